import SwaggerParser from '@apidevtools/swagger-parser';
// Redocly's lint engine. This copy (1.x) comes with redoc; @redocly/cli 2.x bundles its own, which reports
// the same problems on this document (`npx redocly lint` on a saved /openapi.json).
import { createConfig, lintFromString, type NormalizedProblem } from '@redocly/openapi-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { testApp, type TestApp } from './helpers/app.js';

// The document is built from the route schemas alone, whatever the database engine: one run is enough.
describe.skipIf(process.env.TEST_DB === 'postgres')('the OpenAPI document and the documentation pages', () => {
  // Called without an access token: operations, login, and refresh (its credential is the refresh token in
  // the body, and the access token it replaces may have expired).
  const PUBLIC_PATHS = ['/health', '/ready', '/metrics', '/auth/login', '/auth/refresh'];
  const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

  let t: TestApp;
  let doc: any;
  let operations: Array<{ method: string; path: string; operation: any }>;

  beforeAll(async () => {
    t = await testApp();
    const response = await t.app.inject({ method: 'GET', url: '/openapi.json' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    doc = response.json();
    operations = Object.entries<any>(doc.paths ?? {}).flatMap(([path, item]) =>
      METHODS.filter((method) => item[method]).map((method) => ({ method, path, operation: item[method] })),
    );
  });

  const where = ({ method, path }: { method: string; path: string }) => `${method.toUpperCase()} ${path}`;

  describe('/openapi.json', () => {
    it('is a valid OpenAPI 3 document', async () => {
      expect(doc.openapi).toMatch(/^3\./);
      expect(operations.length).toBeGreaterThan(0);
      await expect(SwaggerParser.validate(structuredClone(doc))).resolves.toBeTruthy();
    });

    describe("Redocly's recommended ruleset", () => {
      let problems: NormalizedProblem[];

      beforeAll(async () => {
        const config = await createConfig({
          extends: ['recommended'],
          rules: {
            // The paths `/accounts/` and `/transactions/` keep the trailing slash the seed's clients call them
            // with (docs/api.md, Basics), and the document must name the paths they call.
            'no-path-trailing-slash': 'off',
          },
        });
        problems = await lintFromString({ source: JSON.stringify(doc), absoluteRef: '/openapi.json', config });
      });

      // One line a problem (the problem objects carry the whole document), so a failure reads as a to-do list.
      const lines = (list: NormalizedProblem[]) =>
        list.map((p) => `${p.ruleId} at ${p.location.map((l) => l.pointer).join(', ')}: ${p.message}`);

      it('finds no errors', () => {
        const errors = lines(problems.filter((p) => p.severity === 'error'));
        expect(errors, `Redocly lint errors (fix the route schemas):\n${errors.join('\n')}\n`).toEqual([]);
      });

      it('finds no warnings', () => {
        const warnings = lines(problems.filter((p) => p.severity !== 'error'));
        expect(warnings, `Redocly lint warnings (fix the route schemas):\n${warnings.join('\n')}\n`).toEqual([]);
      });
    });

    it('names a relative server, so that "Try it out" calls the host serving the page', () => {
      expect(doc.servers).toEqual([{ url: '/' }]);
    });

    it('declares the bearer scheme and the OAuth2 password flow of POST /auth/login', () => {
      const schemes = doc.components?.securitySchemes ?? {};
      expect(schemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
      expect(schemes.oauth2).toMatchObject({ type: 'oauth2', flows: { password: { tokenUrl: '/auth/login' } } });
      expect(doc.paths['/auth/login']?.post).toBeDefined();
    });

    it('names both schemes on every protected operation', () => {
      const missing = operations
        .filter(({ path }) => !PUBLIC_PATHS.some((p) => path === p || path.startsWith(`${p}/`)))
        .filter(({ operation }) => {
          const security: unknown[] = operation.security ?? [];
          return (
            !security.some((s) => JSON.stringify(s) === JSON.stringify({ bearerAuth: [] })) ||
            !security.some((s) => JSON.stringify(s) === JSON.stringify({ oauth2: [] }))
          );
        })
        .map(where);
      expect(missing, 'operations without both { bearerAuth: [] } and { oauth2: [] } in security').toEqual([]);
    });

    it('gives every operation an operationId, a summary and a 4xx response', () => {
      const lacking = operations.flatMap((op) => {
        const { operation } = op;
        const gaps: string[] = [];
        if (typeof operation.operationId !== 'string' || operation.operationId === '') gaps.push('no operationId');
        if (typeof operation.summary !== 'string' || operation.summary.trim() === '') gaps.push('no summary');
        if (!Object.keys(operation.responses ?? {}).some((code) => /^4(\d\d|XX)$/i.test(code))) gaps.push('no 4xx response');
        return gaps.length ? [`${where(op)}: ${gaps.join(', ')}`] : [];
      });
      expect(lacking).toEqual([]);
      const ids = operations.map(({ operation }) => operation.operationId);
      expect(new Set(ids).size, 'operationIds are unique').toBe(ids.length);
    });
  });

  describe('the documentation pages load nothing from another host', () => {
    // URLs that name another host but load nothing: XML namespaces.
    const NOT_LOADED = /^https?:\/\/www\.w3\.org\//;

    /** Absolute URLs to another host, outside JavaScript comments (a comment loads nothing). */
    function foreignUrls(text: string, javascript: boolean): string[] {
      const code = javascript ? text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|\s)\/\/.*$/gm, '$1') : text;
      return (code.match(/https?:\/\/[^\s"'`<>)]+/g) ?? []).filter((url) => {
        if (NOT_LOADED.test(url)) return false;
        const host = new URL(url).hostname;
        return host !== 'localhost' && host !== '127.0.0.1';
      });
    }

    /** Follows redirects from `url` on this app, as a browser would. */
    async function fetchPage(url: string) {
      let current = new URL(url, 'http://localhost');
      for (let hop = 0; hop < 5; hop++) {
        const response = await t.app.inject({ method: 'GET', url: current.pathname + current.search });
        if (response.statusCode < 300 || response.statusCode >= 400) return { response, url: current };
        current = new URL(String(response.headers.location), current);
      }
      throw new Error(`too many redirects from ${url}`);
    }

    /** The scripts, stylesheets and icons that an HTML page references, resolved against the page's URL. */
    function assets(html: string, base: URL): URL[] {
      const refs = [...html.matchAll(/<(?:script|link|img)\b[^>]*?\b(?:src|href)\s*=\s*["']([^"']+)["']/gi)].map((m) => m[1]!);
      return refs.map((ref) => new URL(ref, base));
    }

    async function checkPage(path: string, libraryBundles: RegExp) {
      const { response, url } = await fetchPage(path);
      expect(response.statusCode, path).toBe(200);
      expect(response.headers['content-type'], path).toMatch(/^text\/html/);
      expect(foreignUrls(response.body, false), `${path} HTML`).toEqual([]);
      const referenced = assets(response.body, url);
      expect(referenced.length).toBeGreaterThan(0);
      for (const asset of referenced) {
        expect(asset.host, `${path} references ${asset.href}`).toBe('localhost');
        const loaded = await t.app.inject({ method: 'GET', url: asset.pathname });
        expect(loaded.statusCode, asset.pathname).toBe(200);
        if (libraryBundles.test(asset.pathname)) continue;
        if (/\.(js|css|html?)$/.test(asset.pathname)) {
          expect(foreignUrls(loaded.body, asset.pathname.endsWith('.js')), asset.pathname).toEqual([]);
        }
      }
      return { response, referenced };
    }

    it('GET /docs is Swagger UI, whose own page and initializer stay on this host', async () => {
      const { referenced } = await checkPage('/docs', /\/(swagger-ui-bundle|swagger-ui-standalone-preset)\.js$|\/swagger-ui\.css$/);
      expect(referenced.map((u) => u.pathname)).toContain('/docs/static/swagger-initializer.js');

      const initializer = await t.app.inject({ method: 'GET', url: '/docs/static/swagger-initializer.js' });
      expect(initializer.statusCode).toBe(200);
      expect(foreignUrls(initializer.body, true)).toEqual([]);
      // The bundled UI would otherwise send the document to validator.swagger.io.
      expect(initializer.body).toMatch(/validatorUrl:\s*null/);

      // Swagger UI reads the document from /docs/json: the same document.
      const served = await t.app.inject({ method: 'GET', url: '/docs/json' });
      expect(served.statusCode).toBe(200);
      expect(served.json().servers).toEqual([{ url: '/' }]);
    });

    it('GET /redoc is ReDoc, served from this host under a CSP that keeps images and scripts here', async () => {
      const { response, referenced } = await checkPage('/redoc', /\/redoc\.standalone\.js$/);
      expect(referenced.map((u) => u.pathname)).toEqual(expect.arrayContaining(['/redoc/redoc.standalone.js', '/redoc/init.js']));

      const init = await t.app.inject({ method: 'GET', url: '/redoc/init.js' });
      expect(init.statusCode).toBe(200);
      expect(foreignUrls(init.body, true)).toEqual([]);
      expect(init.body).toContain("'/openapi.json'");

      const csp = String(response.headers['content-security-policy'] ?? '');
      expect(csp, 'a Content-Security-Policy header').not.toBe('');
      const directives = new Map(
        csp
          .split(';')
          .map((d) => d.trim().split(/\s+/))
          .filter((parts) => parts[0])
          .map(([name, ...sources]) => [name!.toLowerCase(), sources] as const),
      );
      // Only sources that cannot name another host: keywords ('self', 'none', nonces, hashes...) and data:/blob:.
      const local = (source: string) => /^'[^']+'$/.test(source) || source === 'data:' || source === 'blob:';
      for (const name of ['img-src', 'script-src']) {
        const sources = directives.get(name);
        expect(sources, `${name} in ${csp}`).toBeDefined();
        expect(
          sources!.filter((s) => !local(s)),
          `${name} allows another host: ${csp}`,
        ).toEqual([]);
      }
    });
  });
});
