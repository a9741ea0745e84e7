// `GET /runs?phase=`: one of the run phases, checked so that a typo is a 400, not an empty list.
import { BadRequestError, RUN_PHASES, type RunPhase } from '../domain/index.ts';

export function phaseParam(raw: unknown): RunPhase | undefined {
  if (raw === undefined || raw === '') return undefined;
  const value = String(raw);
  if (!(RUN_PHASES as readonly string[]).includes(value)) throw new BadRequestError(`phase must be one of ${RUN_PHASES.join(', ')} (got "${value}")`);
  return value as RunPhase;
}
