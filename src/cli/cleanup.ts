// `conveyor cleanup`: by hand, what a running server does by itself: lets run pods go that
// hold the log finalizer `conveyor.ci/logs` while no server can archive their logs (Conveyor
// stopped or uninstalled, its namespace being deleted). Talks to the Kubernetes API server
// directly (KUBECONFIG, ~/.kube/config, or the pod's service account), not to Conveyor.
import type { Command } from 'commander';
import { exitOnUsageError, terminal } from './client.ts';

interface CleanupOptions {
  namespace?: string;
  all?: boolean;
}

export function registerCleanup(program: Command): void {
  program
    .command('cleanup')
    .description('release run pods held by the log finalizer when no Conveyor server runs (Kubernetes)')
    .option('-n, --namespace <ns>', "the namespace of Conveyor's runs (env CONVEYOR_NAMESPACE; default: own namespace in a pod, else default)")
    .option('--all', 'every run pod, not only those being deleted (after an uninstall: no server will archive them)')
    .exitOverride(exitOnUsageError)
    .action(async (opts: CleanupOptions) => {
      // Loaded here so that the other client commands do not pay for the Kubernetes client.
      const { CoreV1Api, KubeConfig } = await import('@kubernetes/client-node');
      const { releaseLogFinalizers } = await import('../controller/kubernetes/log-finalizers.ts');
      const { defaultNamespace } = await import('../serve/kubernetes.ts');
      const kc = new KubeConfig();
      kc.loadFromDefault();
      const namespace = opts.namespace ?? defaultNamespace();
      const released = await releaseLogFinalizers(kc.makeApiClient(CoreV1Api), namespace, { all: opts.all === true });
      const term = terminal();
      for (const name of released) term.print(`released pod ${namespace}/${name}`);
      term.print(`${released.length} run pod(s) released from the log finalizer in namespace ${namespace}`);
    });
}
