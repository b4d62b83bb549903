// `POST /login`: username and password (JSON or form) in, an HS256 JWT out, for clients that
// connect to Thumper with a bearer token instead of a password. Attempts are rate limited per
// IP+username (guessing one password) and, more loosely, per IP (spraying many usernames).

import express, { Router } from 'express';
import type { Request, Response } from 'express';
import { ipKeyGenerator, rateLimit } from 'express-rate-limit';
import jwt from 'jsonwebtoken';
import type { Logger } from 'pino';
import { decideUser } from './decide.js';
import type { Rules } from './rules.js';

export interface JwtOptions {
  /** HS256 key; main.ts insists on at least 32 bytes. */
  readonly secret: string;
  readonly issuer: string;
  readonly audience: string;
  readonly ttlSeconds: number;
}

export interface LoginRateLimit {
  readonly windowMs: number;
  /** Attempts per IP and username within the window. */
  readonly perUser: number;
  /** Attempts per IP, whatever the username, within the window. */
  readonly perIp: number;
}

export const DEFAULT_LOGIN_RATE_LIMIT: LoginRateLimit = { windowMs: 60_000, perUser: 10, perIp: 100 };

export interface LoginOptions {
  readonly rules: Rules;
  readonly jwt: JwtOptions;
  readonly log: Logger;
  readonly rateLimit: LoginRateLimit;
  /** Largest accepted body, in bytes. */
  readonly bodyLimit: number;
}

function field(req: Request, name: string): string | undefined {
  const body: unknown = req.body;
  if (typeof body !== 'object' || body === null) return undefined;
  const value: unknown = (body as Record<string, unknown>)[name];
  return typeof value === 'string' ? value : undefined;
}

function tooMany(log: Logger) {
  return (req: Request, res: Response): void => {
    log.info({ ip: req.ip, username: field(req, 'username') }, 'login rate limit reached');
    res.status(429).json({ error: 'too many login attempts, try again later' });
  };
}

export function loginRouter(options: LoginOptions): Router {
  const { rules, log } = options;
  const limits = options.rateLimit;
  const router = Router();
  const ip = (req: Request): string => ipKeyGenerator(req.ip ?? 'unknown');
  const perUser = rateLimit({
    windowMs: limits.windowMs,
    limit: limits.perUser,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    keyGenerator: (req) => `${ip(req)}|${field(req, 'username') ?? ''}`,
    handler: tooMany(log),
  });
  const perIp = rateLimit({
    windowMs: limits.windowMs,
    limit: limits.perIp,
    standardHeaders: false,
    legacyHeaders: false,
    keyGenerator: ip,
    handler: tooMany(log),
  });

  // The limiters key on the username, so the body is parsed first.
  router.post('/login', express.json({ limit: options.bodyLimit }), perIp, perUser, async (req, res) => {
    const username = field(req, 'username');
    const password = field(req, 'password');
    if (username === undefined || username === '' || password === undefined) {
      res.status(400).json({ error: 'username and password are required' });
      return;
    }
    const decision = await decideUser(rules, username, password);
    if (!decision.allow) {
      log.info({ username, reason: decision.reason }, 'login denied');
      // One answer for unknown user and wrong password: no hint which part was wrong.
      res.status(401).json({ error: 'invalid credentials' });
      return;
    }
    const token = jwt.sign({}, options.jwt.secret, {
      algorithm: 'HS256',
      subject: username,
      issuer: options.jwt.issuer,
      audience: options.jwt.audience,
      expiresIn: options.jwt.ttlSeconds,
    });
    log.debug({ username }, 'token issued');
    res.json({ token, token_type: 'Bearer', expires_in: options.jwt.ttlSeconds });
  });
  return router;
}
