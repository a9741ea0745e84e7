// No privilege escalation through a pipeline: naming a ServiceAccount puts its token in the
// step's pod, so the author must be allowed what Kubernetes itself asks of anyone who uses
// a ServiceAccount (create pods in the namespace), and the server's own account is never
// usable. The same rules hold for `kubectl apply` through the chart's admission policy.
import type { ParameterizedContext } from 'koa';
import { PIPELINE_TYPE, type PipelineSpec, type ResourceInput } from '../../domain/index.ts';
import { ForbiddenError } from './browser.ts';
import type { RequestAuth, User } from './types.ts';

export async function assertMayUseServiceAccount(auth: RequestAuth | undefined, user: User | undefined, input: ResourceInput): Promise<void> {
  if (!auth?.serviceAccounts || !user || input.resource !== PIPELINE_TYPE) return;
  const named = (input.spec as unknown as PipelineSpec).serviceAccountName;
  if (named === undefined) return;
  const { own, namespace } = auth.serviceAccounts;
  if (own !== undefined && named === own) {
    throw new ForbiddenError(`spec.serviceAccountName "${named}" is Conveyor's own ServiceAccount, which no pipeline may use`);
  }
  if (!(await auth.authorizer.allowed(user, { verb: 'create', resource: 'pods' }))) {
    throw new ForbiddenError(
      `spec.serviceAccountName "${named}": user "${user.name}" may not create pods in namespace ${namespace}, which running as a ServiceAccount requires`,
    );
  }
}

// The name a run records as its starter.
export function requesterOf(ctx: ParameterizedContext): string | null {
  return (ctx.state.user as User | undefined)?.name ?? null;
}
