import { expect } from 'chai';
import fc from 'fast-check';
import { FingerprintCache, fingerprintCommand, fingerprintSql } from './sql';

const fp = (s: string, system = ''): string => fingerprintSql(s, system).text;

describe('SQL fingerprints', () => {
  it('literals and every placeholder form become ?', () => {
    const want = 'SELECT * FROM items WHERE order_id = ? AND name = ?';
    for (const q of [
      "SELECT * FROM items WHERE order_id = 42 AND name = 'bob'",
      'SELECT * FROM items WHERE order_id = ? AND name = ?',
      'SELECT * FROM items WHERE order_id = %s AND name = %s',
      'SELECT * FROM items WHERE order_id = %(order_id_1)s AND name = %(name_1)s',
      'SELECT * FROM items WHERE order_id = $1 AND name = $2',
      'SELECT * FROM items WHERE order_id = :order_id AND name = :name',
      'SELECT * FROM items WHERE order_id = @p1 AND name = @p2',
      "SELECT  *\n  FROM items\tWHERE order_id = -7 AND name = E'it''s'",
      'SELECT * FROM items WHERE order_id = 1.5e3 AND name = $tag$x$tag$',
    ]) {
      expect(fp(q), q).to.equal(want);
    }
    expect(fp('SELECT 0xFF, TRUE, false, NULL FROM t')).to.equal('SELECT ?, ?, ?, NULL FROM t');
  });

  it('IN-lists, SQLAlchemy expanding lists, VALUES rows and ARRAY literals collapse', () => {
    expect(fp('SELECT id FROM users WHERE id IN (1, 2, 3)')).to.equal('SELECT id FROM users WHERE id IN (?)');
    expect(fp('SELECT id FROM users WHERE id IN (%(id_1_1)s, %(id_1_2)s, %(id_1_3)s, %(id_1_4)s)')).to.equal('SELECT id FROM users WHERE id IN (?)');
    expect(fp('SELECT id FROM users WHERE id IN (?)')).to.equal('SELECT id FROM users WHERE id IN (?)');
    expect(fp('INSERT INTO t (a, b) VALUES (1, 2), (3, 4), (5, 6)')).to.equal('INSERT INTO t (a, b) VALUES (?)');
    expect(fp('SELECT * FROM t WHERE a = ANY(ARRAY[1, 2, 3])')).to.equal('SELECT * FROM t WHERE a = ANY(ARRAY[?])');
    // a sub-query inside parentheses is kept
    expect(fp('SELECT * FROM t WHERE id IN (SELECT id FROM u WHERE x = 3)')).to.equal('SELECT * FROM t WHERE id IN (SELECT id FROM u WHERE x = ?)');
  });

  it('comments are stripped (sqlcommenter included); # only for MySQL; :: casts and identifiers stay', () => {
    expect(fp("SELECT * FROM t WHERE id = 5 /*traceparent='00-abc-def-01',route='%2Fusers'*/")).to.equal('SELECT * FROM t WHERE id = ?');
    expect(fp('SELECT a -- the a column\nFROM t')).to.equal('SELECT a FROM t');
    expect(fp('SELECT a # note\nFROM t', 'mysql')).to.equal('SELECT a FROM t');
    expect(fp('SELECT created::date FROM t WHERE "User".id = 3 AND `x` = \'y\'')).to.equal('SELECT created::date FROM t WHERE "User".id = ? AND `x` = ?');
    expect(fp('SELECT users_2024.id FROM users_2024 WHERE t1.a = 1')).to.equal('SELECT users_2024.id FROM users_2024 WHERE t1.a = ?');
  });

  it('summary: the operation and the tables', () => {
    expect(fingerprintSql('SELECT id FROM users WHERE id = 1').summary).to.equal('SELECT users');
    expect(fingerprintSql('SELECT * FROM orders o JOIN items i ON i.order_id = o.id').summary).to.equal('SELECT orders items');
    expect(fingerprintSql('INSERT INTO shipping_details (a) SELECT a FROM orders').summary).to.equal('INSERT shipping_details SELECT orders');
    expect(fingerprintSql('UPDATE public.users SET a = 1').summary).to.equal('UPDATE public.users');
  });

  it('literals are told from placeholders; truncated text is flagged', () => {
    expect(fingerprintSql('SELECT * FROM t WHERE id = 5').literals).to.equal(true);
    expect(fingerprintSql('SELECT * FROM t WHERE id = %s').literals).to.equal(false);
    expect(fingerprintSql('SELECT * FROM t WHERE id = ? LIMIT 10').literals).to.equal(true);
    expect(fingerprintSql('SELECT a, b, c FROM t WHERE ...').truncated).to.equal(true);
    expect(fingerprintSql('SELECT a FROM t').truncated).to.equal(false);
  });

  it('Redis: command names only', () => {
    expect(fingerprintCommand('GET ?').text).to.equal('GET');
    expect(fingerprintCommand('SET ? ?\nEXPIRE ? ?').text).to.equal('SET EXPIRE');
    expect(new FingerprintCache().get('HGETALL ?', 'redis').text).to.equal('HGETALL');
  });

  it('statements that differ only in literal values get one fingerprint (property)', () => {
    const lit = fc.oneof(
      fc.integer({ min: -1e6, max: 1e6 }).map(String),
      fc.string({ maxLength: 8 }).map((s) => `'${s.replace(/'/g, "''")}'`),
      fc.constantFrom('TRUE', 'FALSE', '?', '%s', '$3'),
    );
    fc.assert(
      fc.property(fc.array(lit, { minLength: 1, maxLength: 5 }), fc.array(lit, { minLength: 1, maxLength: 5 }), lit, lit, (a, b, x, y) => {
        const q = (list: string[], v: string): string => `SELECT * FROM t WHERE id IN (${list.join(', ')}) AND v = ${v}`;
        expect(fp(q(a, x))).to.equal(fp(q(b, y)));
      }),
    );
  });

  it('never throws and stays bounded on arbitrary text (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (s) => {
        const f = fingerprintSql(s);
        expect(f.text.length).to.be.at.most(1000);
      }),
    );
  });
});
