// The express application: the four protocol paths, /login, /healthz, hardened defaults (helmet,
// no x-powered-by, no ETag, no caching, small bodies) and an error handler that never sends a
// stack trace. No listening here: server.ts does that, so tests can build apps freely.

import express from 'express';
import type { Express, NextFunction, Request, Response } from 'express';
import helmet from 'helmet';
import type { Logger } from 'pino';
import { DEFAULT_LOGIN_RATE_LIMIT, loginRouter } from './login.js';
import type { JwtOptions, LoginRateLimit } from './login.js';
import { protocolRouter } from './protocol.js';
import type { OnDecision } from './protocol.js';
import type { Rules } from './rules.js';

/** RabbitMQ's requests are a few hundred bytes; nothing legitimate comes close. */
export const BODY_LIMIT_BYTES = 8 * 1024;

export interface AppOptions {
  readonly rules: Rules;
  readonly jwt: JwtOptions;
  readonly log: Logger;
  readonly onDecision?: OnDecision | undefined;
  readonly loginRateLimit?: Partial<LoginRateLimit> | undefined;
}

function requestLog(log: Logger) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      // req.path, never req.url: a GET to /auth/user carries the password in its query string.
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      log.debug({ method: req.method, path: req.path, status: res.statusCode, ms: Math.round(ms * 10) / 10 }, 'request');
    });
    next();
  };
}

function isProtocolPath(req: Request): boolean {
  return req.path.startsWith('/auth/');
}

function errorHandler(log: Logger) {
  return (err: unknown, req: Request, res: Response, next: NextFunction): void => {
    if (res.headersSent) {
      next(err);
      return;
    }
    const e = (typeof err === 'object' && err !== null ? err : {}) as { status?: unknown; type?: unknown; expose?: unknown; message?: unknown };
    const status = typeof e.status === 'number' && e.status >= 400 && e.status < 600 ? e.status : 500;
    // body-parser marks its client errors (too large, bad JSON) as safe to show.
    const message = status < 500 && e.expose === true && typeof e.message === 'string' ? e.message : 'internal error';
    if (status >= 500) log.error({ err, path: req.path }, 'request failed');
    else log.info({ path: req.path, status, type: e.type }, 'bad request');
    if (isProtocolPath(req)) res.status(status).type('text/plain').send(message);
    else res.status(status).json({ error: message });
  };
}

export function createApp(options: AppOptions): Express {
  const { log } = options;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(helmet());
  app.use(requestLog(log));
  app.use((_req, res, next) => {
    // Decisions and tokens must not be kept by any cache in between.
    res.set('Cache-Control', 'no-store');
    next();
  });
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.use(express.urlencoded({ extended: false, limit: BODY_LIMIT_BYTES }));
  app.use(protocolRouter({ rules: options.rules, log, onDecision: options.onDecision }));
  app.use(
    loginRouter({
      rules: options.rules,
      jwt: options.jwt,
      log,
      rateLimit: { ...DEFAULT_LOGIN_RATE_LIMIT, ...options.loginRateLimit },
      bodyLimit: BODY_LIMIT_BYTES,
    }),
  );
  app.use((req, res) => {
    if (isProtocolPath(req)) res.status(404).type('text/plain').send('not found');
    else res.status(404).json({ error: 'not found' });
  });
  app.use(errorHandler(log));
  return app;
}
