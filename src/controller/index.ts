export { LocalScheduler, type LocalSchedulerOptions } from './local-scheduler.ts';
