export * from './errors.ts';
export * from './names.ts';
export * from './json.ts';
export * from './validation.ts';
export * from './pipeline-spec.ts';
export * from './resources.ts';
export * from './run.ts';
export * from './log.ts';
