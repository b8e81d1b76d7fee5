import type { Router } from 'express';
import { onlineCounts } from '../../data/online-metrics.js';
import type { ServeContext } from '../context.js';
import { addCounts, onlineMetrics } from '../online-report.js';
import { OnlineMetricsSchema, reply } from '../responses.js';
import { parseOnlineQuery } from '../validation.js';

/** GET /v1/metrics/online: impressions and what followed them, per version, variant or route, with 95 % intervals. */
export function onlineMetricsRoutes(router: Router, ctx: ServeContext): void {
  router.get('/metrics/online', ctx.auth.require('read'), async (req, res) => {
    const q = parseOnlineQuery(req.query);
    const rows = await onlineCounts(ctx.store, { from: q.from, to: q.to, groupBy: q.groupBy, ...(q.experiment !== undefined && { experimentId: q.experiment }), ...(q.bucketMs !== undefined && { bucketMs: q.bucketMs }) });
    const byGroup = new Map<string, typeof rows>();
    for (const row of rows) byGroup.set(row.group, [...(byGroup.get(row.group) ?? []), row]);
    reply(res, OnlineMetricsSchema, {
      from: new Date(q.from).toISOString(),
      to: new Date(q.to).toISOString(),
      groupBy: q.groupBy,
      bucket: q.bucket,
      groups: [...byGroup.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([group, parts]) => ({ group, ...onlineMetrics(addCounts(parts)) })),
      series: q.bucket === 'none' ? [] : rows.map((r) => ({ bucket: new Date(r.bucket).toISOString(), group: r.group, ...onlineMetrics(r) })),
    });
  });
}
