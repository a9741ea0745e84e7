// The bearer token client commands send: --token / CONVEYOR_TOKEN, or with --kube the
// current kubeconfig context's credentials, obtained as kubectl does (static tokens, exec
// plugins such as cloud logins, OIDC). Client certificates cannot be forwarded to another
// server, so a context that only has one is an error that says what to do instead.
export type TokenSource = () => Promise<string | undefined>;

export function staticToken(token: string | undefined): TokenSource {
  const value = token?.trim() || undefined;
  return async () => value;
}

export function kubeconfigToken(): TokenSource {
  let cached: Promise<string> | undefined;
  return () =>
    (cached ??= (async () => {
      // Loaded only for --kube: the client library is large.
      const { KubeConfig } = await import('@kubernetes/client-node');
      const kc = new KubeConfig();
      kc.loadFromDefault();
      const options: { headers?: Record<string, string> } = { headers: {} };
      await kc.applyToHTTPSOptions(options);
      const header = options.headers?.Authorization ?? options.headers?.authorization;
      const token = header && /^Bearer\s+(\S+)$/i.exec(header)?.[1];
      if (!token) {
        throw new Error(
          `--kube: the kubeconfig context "${kc.getCurrentContext()}" has no bearer token (a client certificate cannot be passed on); ` +
            'use --token "$(kubectl create token <serviceaccount>)" or a context with a token or exec plugin',
        );
      }
      return token;
    })());
}
