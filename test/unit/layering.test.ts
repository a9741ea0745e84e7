// DESIGN.md's folder roles, enforced: dependency-cruiser checks that each role imports only
// the roles below it, that domain imports nothing of ours and does no I/O, and that there
// are no import cycles (rules and roles in scripts/layering.ts).
import { expect } from 'chai';
import { ROLES, checkLayering, layeringRules, unassigned } from '../../scripts/layering.ts';

describe('layering (dependency-cruiser)', () => {
  it('every file of src/ belongs to a role', () => {
    expect(unassigned(), 'add the folder to ROLES in scripts/layering.ts').to.deep.equal([]);
  });

  it('has a rule per role against importing upwards, plus domain, I/O and cycle rules', () => {
    const names = layeringRules().map((r) => r.name);
    expect(names).to.include.members(['domain-imports-nothing-of-ours', 'domain-does-no-io', 'no-cycles', 'store-imports-no-higher-role', 'domain-imports-no-higher-role']);
    expect(names.filter((n) => n?.endsWith('-imports-no-higher-role'))).to.have.lengthOf(ROLES.length - 1);
  });

  it('src/ breaks none of them', async function () {
    this.timeout(60_000);
    expect(await checkLayering()).to.deep.equal([]);
  });
});
