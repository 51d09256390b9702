export { Echo, type EchoArgs } from './echo';
