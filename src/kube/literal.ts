// Kubernetes expands `$(NAME)` references in a container's command, args and env values
// (from the container's env) and turns `$$` into `$`. Text that must reach the process
// exactly as written (a step's shell command, its env values) goes through `literal`:
// every `$` doubled, which the expansion turns back into the original text, so a step
// sees the same command and variables in Kubernetes as in local mode (`echo $$` prints
// the shell's pid, `$(NAME)` is the shell's command substitution).
export function literal(text: string): string {
  // A replacer function: in a replacement string, `$$` would mean one `$`.
  return text.replaceAll('$', () => '$$');
}
