export { App, type Handler } from './app';
export { compose, type Middleware, type Next } from './compose';
export { Context, Request, Response, type Protocol, type ResponseBody, type ResponseSink, type RequestInit } from './context';
export { Fields } from './fields';
export { HttpError, isHttpError, statusText } from './errors';
export { Router } from './router';
export { respond, applyError } from './respond';
