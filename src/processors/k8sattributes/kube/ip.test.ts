import { expect } from 'chai';
import { normaliseIp, podIpCandidate } from './ip';

describe('k8sattributes pod IP candidates', () => {
  it('normalises IPv4-mapped IPv6, zones, brackets and IPv6 spelling', () => {
    expect(normaliseIp('::ffff:10.1.2.3')).to.equal('10.1.2.3');
    expect(normaliseIp('::FFFF:0a01:0203')).to.equal('10.1.2.3');
    expect(normaliseIp('[fd00:0:0:0:0:0:0:5]')).to.equal('fd00::5');
    expect(normaliseIp('FD00::0005')).to.equal('fd00::5');
    expect(normaliseIp('fe80::1%eth0')).to.equal('fe80::1');
    expect(normaliseIp('2001:db8:0:1:0:0:0:1')).to.equal('2001:db8:0:1::1');
    expect(normaliseIp('not an ip')).to.equal(undefined);
  });

  it('refuses loopback (mesh proxies such as 127.0.0.6), unspecified and invalid addresses', () => {
    for (const a of ['127.0.0.1', '127.0.0.6', '::1', '::ffff:127.0.0.6', '0.0.0.0', '::', '', 'localhost', undefined]) {
      expect(podIpCandidate(a), String(a)).to.equal(undefined);
    }
    expect(podIpCandidate('10.0.0.1')).to.equal('10.0.0.1');
    expect(podIpCandidate('::ffff:192.168.1.1')).to.equal('192.168.1.1');
    expect(podIpCandidate('fd00::2')).to.equal('fd00::2');
  });
});
