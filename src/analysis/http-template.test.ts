import { expect } from 'chai';
import { isIdSegment, templateHttp } from './http-template';

describe('outbound HTTP templates', () => {
  it('method, server and a path with id segments templated; query dropped', () => {
    const t = templateHttp('get', 'http://users:8000/users/17/orders/3f2a9c1e-0b7d-4c8e-9a11-2b3c4d5e6f70?x=1', '', '');
    expect(t.text).to.equal('GET users:8000 /users/{id}/orders/{id}');
    expect(t.parameterised).to.equal(true);
    expect(t.raw).to.equal('/users/17/orders/3f2a9c1e-0b7d-4c8e-9a11-2b3c4d5e6f70?x=1');
    expect(templateHttp('POST', 'https://u:p@api.example.com/v1/charges', '', '').text).to.equal('POST api.example.com /v1/charges');
    expect(templateHttp('GET', '', 'inventory', '9000').text).to.equal('GET inventory:9000 /');
  });

  it('id segments: digits, UUIDs, long hex with a digit, long mixed tokens; words and versions stay', () => {
    for (const s of ['17', '3f2a9c1e0b7d4c8e9a112b3c4d5e6f70', 'deadbeef01', '01HV4ZQ9ZP8XK3M2N7R5T6Y8W0']) expect(isIdSegment(s), s).to.equal(true);
    for (const s of ['users', 'v1', 'v2.1', 'deadbeef', '', 'abcdefabcdef']) expect(isIdSegment(s), s).to.equal(false);
  });
});
