// User schemas are safe to accept: patterns run on RE2 (linear time) or are refused naming
// the pattern, each schema compiles in an Ajv of its own (a `$id` never collides), and the
// compiled validators are cached by content and let go when a definition changes or goes.
import { expect } from 'chai';
import { SchemaValidators } from '../../src/api/schema-validators.ts';
import { BadRequestError, compileUserSchema, type JsonObject } from '../../src/domain/index.ts';

function refusal(work: () => unknown): BadRequestError {
  try {
    work();
  } catch (err) {
    if (err instanceof BadRequestError) return err;
    throw err;
  }
  throw new Error('accepted');
}

describe('user schemas', () => {
  it('run patterns in linear time: ^(a+)+$ against 100,000 characters answers at once', () => {
    // JavaScript's backtracking RegExp takes exponential time here: at 40 characters, hours.
    const validate = compileUserSchema({ type: 'string', pattern: '^(a+)+$' });
    expect(validate(`${'a'.repeat(100_000)}!`)).to.equal(false);
    expect(validate('a'.repeat(100_000))).to.equal(true);
  });

  it('keep JavaScript pattern syntax RE2 shares: classes, escapes, anchors, unicode', () => {
    const validate = compileUserSchema({ type: 'object', properties: { a: { type: 'string', pattern: '^\\d{2}-[a-z]+\\b' }, b: { type: 'string', pattern: '^\\p{L}+$' } }, patternProperties: { '^x-': { type: 'number' } } });
    expect(validate({ a: '12-abc', b: 'héllo', 'x-n': 1 })).to.equal(true);
    expect(validate({ a: '1-abc' })).to.equal(false);
    expect(validate({ 'x-n': 'no' })).to.equal(false);
  });

  it('a different pattern is a different check (ajv shares compiled patterns by their text)', () => {
    const validate = compileUserSchema({ type: 'object', properties: { a: { type: 'string', pattern: '^a$' }, b: { type: 'string', pattern: '^b$' } } });
    expect(validate({ a: 'a', b: 'b' })).to.equal(true);
    expect(validate({ a: 'a', b: 'a' })).to.equal(false);
  });

  for (const pattern of ['(a)\\1', '(?=a)b', '(?<!x)y']) {
    it(`refuses a pattern RE2 cannot run (${pattern}) with a 400 naming it`, () => {
      const err = refusal(() => compileUserSchema({ type: 'object', properties: { a: { type: 'string', pattern } } }));
      expect(err.status).to.equal(400);
      expect(err.message).to.include(`pattern "${pattern}"`);
      expect(err.message).to.match(/RE2/);
    });
  }

  it('compiles two schemas with the same $id, any number of times', () => {
    const one = compileUserSchema({ $id: 'http://example.com/same', type: 'object', required: ['a'] });
    const two = compileUserSchema({ $id: 'http://example.com/same', type: 'object', required: ['b'] });
    expect(one({ a: 1 })).to.equal(true);
    expect(two({ a: 1 })).to.equal(false);
    for (let i = 0; i < 3; i++) compileUserSchema({ $id: 'http://example.com/same', type: 'object', properties: { [`p${i}`]: { $ref: 'inner' } }, definitions: { x: { $id: 'http://example.com/inner', type: 'string' } } });
  });

  it('still refuses what is no JSON Schema', () => {
    expect(refusal(() => compileUserSchema({ type: 'no-such-type' })).message).to.match(/^schema is not a valid JSON Schema/);
  });
});

describe('validator cache', () => {
  const schema = (n: number): JsonObject => ({ type: 'object', properties: { n: { const: n } } });

  it('shares one validator between definitions of equal content', () => {
    const cache = new SchemaValidators();
    const a = cache.validatorFor({ name: 'a', schema: schema(1) });
    const b = cache.validatorFor({ name: 'b', schema: schema(1) });
    expect(a).to.equal(b);
    expect(cache.size).to.equal(1);
  });

  it('lets the old validator go when a definition changes, and its own when it goes', () => {
    const cache = new SchemaValidators();
    for (let n = 0; n < 50; n++) expect(cache.validatorFor({ name: 'a', schema: schema(n) })({ n })).to.equal(true);
    expect(cache.size, 'one definition, one validator').to.equal(1);
    cache.validatorFor({ name: 'b', schema: schema(49) });
    cache.forget('a');
    expect(cache.size, 'b still uses the shared one').to.equal(1);
    cache.forget('b');
    expect(cache.size).to.equal(0);
  });

  it('check() compiles a write without keeping it', () => {
    const cache = new SchemaValidators();
    expect(cache.check(schema(1))({ n: 1 })).to.equal(true);
    expect(cache.size).to.equal(0);
    expect(() => cache.check({ type: 'string', pattern: '(?=x)' })).to.throw(BadRequestError, /pattern "\(\?=x\)"/);
  });
});
