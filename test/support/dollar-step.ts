// A step whose command and env value use `$` the ways a shell does and Kubernetes' own
// `$(NAME)` expansion would change: `$$` (the shell's pid), `$(NAME)` (command substitution,
// here of a shell function named like a variable the step has) and `$` in an env value.
// Local and Kubernetes mode must print the same lines for it.
export const DOLLAR_STEP = {
  command: 'CONVEYOR_STEP() { echo function; }; test "$$" -gt 1 && echo "own pid"; echo "[$(CONVEYOR_STEP)]"; echo "[$PRICE]"',
  env: [{ name: 'PRICE', value: '$(CONVEYOR_STEP) costs $$5' }],
  printed: ['own pid', '[function]', '[$(CONVEYOR_STEP) costs $$5]'],
};
