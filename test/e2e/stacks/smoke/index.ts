import * as pulumi from '@pulumi/pulumi';
import { diagnostics } from 'lifeboat';

const config = new pulumi.Config();
const echo = new diagnostics.Echo('hello', {
  message: config.require('message'),
  tag: config.get('tag') ?? 'echo',
});

export const message = echo.message;
export const revision = echo.revision;
export const echoId = echo.id;
