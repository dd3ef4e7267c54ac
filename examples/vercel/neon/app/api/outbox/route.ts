/**
 * The cron route: Vercel calls GET /api/outbox on the schedule in vercel.json, with
 * `Authorization: Bearer $CRON_SECRET`. cronHandler checks it (constant time), runs one tick
 * (claims and marks are short statements on the Pool; no transaction is held across a send)
 * and answers its counts as JSON; anyone else gets 401.
 */
import { cronHandler } from "edge-outbox";
import { outbox } from "../../../lib/outbox";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";
// The tick stops starting batches after 45 s; the function may run 60 s.
export const maxDuration = 60;

export const GET = cronHandler(outbox, { secret: process.env.CRON_SECRET, budgetMs: 45_000 });
