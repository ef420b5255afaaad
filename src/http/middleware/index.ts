/** The middleware that ships with Harrier. */
export { staticFiles, type StaticOptions } from './static';
export { compress, type CompressOptions } from './compress';
export { bodyParser, negotiate, respondWith, type BodyParserOptions } from './body';
export { accessLog, type AccessLogOptions } from './log';
export { forwarded, type ForwardedOptions } from './forwarded';
export { allowedHosts, type AllowedHostsOptions } from './hosts';
export { proxy, type ProxyOptions } from './proxy';
