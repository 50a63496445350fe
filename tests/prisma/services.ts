// SPDX-License-Identifier: MIT
// The platform's services as Prisma 7 clients (the queries the incident's seed ran), for
// tests/integration/test_prisma.cpp. Every answer is one JSON line on stdout, in
// modelrepo's terms, so that the test compares it with modelrepo's own.
//
//   CLIENT=<generated client.ts> DATABASE_URL=… DB_SCHEMA=… FLAVOR=owned|contrib \
//     tsx services.ts <command> [args]
//
//   seed FILE              load a modelrepo snapshot through Prisma (owned: ids by cuid)
//   queries SLUG,SLUG      count() on models and providers, modelStatus.findMany(),
//                          model.findMany({where: {slug: {in}}, include: {provider, status}})
//   set-status SLUG HEALTH update a model's status through Prisma
//   get-status SLUG        a model's status row, with its updatedAt (owned)
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { PrismaPg } from '@prisma/adapter-pg';

const { PrismaClient } = await import(pathToFileURL(process.env.CLIENT!).href);
const owned = process.env.FLAVOR === 'owned';
const adapter = new PrismaPg({ connectionString: process.env.DATABASE_URL! },
                             { schema: process.env.DB_SCHEMA || undefined });
const prisma = new PrismaClient({ adapter });

type Status = {
    model_slug: string; health: string; availability: number; latency_ms: number | null;
    error_rate: number; region: string; checked_at_ms: number;
};

function status(slug: string, s: any): Status {
    if (owned)
        return { model_slug: slug, health: String(s.status).toLowerCase(),
                 availability: s.availability, latency_ms: s.responseTime ?? null,
                 error_rate: s.errorRate, region: s.region ?? '',
                 checked_at_ms: s.lastChecked.getTime() };
    return { model_slug: s.modelSlug, health: s.health, availability: s.availability,
             latency_ms: s.latencyMs ?? null, error_rate: s.errorRate, region: s.region,
             checked_at_ms: s.checkedAt.getTime() };
}

function model(m: any) {
    return {
        slug: m.slug, name: m.name, provider_slug: m.provider.slug,
        description: m.description ?? '',
        context_window: m.contextWindow == null ? null : Number(m.contextWindow),
        active: owned ? m.isActive : m.active,
        provider: { slug: m.provider.slug, name: m.provider.name, website: m.provider.website ?? '' },
        status: m.status ? status(m.slug, m.status) : null,
    };
}

async function seed(file: string) {
    const snapshot = JSON.parse(readFileSync(file, 'utf8'));
    const ids = new Map<string, string>();
    for (const p of snapshot.providers) {
        const row = await prisma.provider.create({
            data: owned ? { slug: p.slug, name: p.name, website: p.website || null }
                        : { slug: p.slug, name: p.name, website: p.website ?? '' } });
        ids.set(p.slug, row.id);
    }
    const models = new Map<string, string>();
    for (const m of snapshot.models) {
        const data: any = owned
            ? { slug: m.slug, name: m.name, description: m.description || null,
                contextWindow: m.context_window ?? null, isActive: m.active ?? true,
                provider: { connect: { id: ids.get(m.provider) } } }
            : { slug: m.slug, name: m.name, description: m.description ?? '',
                contextWindow: m.context_window == null ? null : BigInt(m.context_window),
                active: m.active ?? true, provider: { connect: { slug: m.provider } } };
        const row = await prisma.model.create({ data });
        models.set(m.slug, owned ? row.id : row.slug);
    }
    for (const s of snapshot.statuses ?? []) {
        const data: any = owned
            ? { model: { connect: { id: models.get(s.model) } },
                status: s.health.toUpperCase(), availability: s.availability,
                responseTime: s.latency_ms == null ? null : Math.round(s.latency_ms),
                errorRate: s.error_rate, region: s.region || null,
                lastChecked: new Date(s.checked_at) }
            : { model: { connect: { slug: s.model } }, health: s.health,
                availability: s.availability, latencyMs: s.latency_ms ?? null,
                errorRate: s.error_rate, region: s.region ?? '',
                checkedAt: new Date(s.checked_at) };
        await prisma.modelStatus.create({ data });
    }
    return { providers: ids.size, models: models.size, statuses: (snapshot.statuses ?? []).length };
}

async function queries(slugs: string[]) {
    const models = await prisma.model.count();
    const providers = await prisma.provider.count();
    const rows = await prisma.modelStatus.findMany({ include: { model: true } });
    const statuses = rows.map((s: any) => status(s.model.slug, s))
        .sort((a: Status, b: Status) => a.model_slug.localeCompare(b.model_slug));
    const found = await prisma.model.findMany({
        where: { slug: { in: slugs } }, include: { provider: true, status: true },
        orderBy: { slug: 'asc' } });
    return { models, providers, statuses, found: found.map(model) };
}

async function setStatus(slug: string, health: string) {
    const where = owned ? { model: { slug } } : { modelSlug: slug };
    const row = await prisma.modelStatus.findFirstOrThrow({ where });
    const data: any = owned ? { status: health.toUpperCase(), lastChecked: new Date() }
                            : { health, checkedAt: new Date() };
    const key = owned ? { id: row.id } : { modelSlug: slug };
    await prisma.modelStatus.update({ where: key, data });
    return { updated: slug, at_ms: Date.now() };
}

async function getStatus(slug: string) {
    const where = owned ? { model: { slug } } : { modelSlug: slug };
    const row: any = await prisma.modelStatus.findFirst({ where });
    if (!row)
        return { found: false };
    return { found: true, ...status(slug, row),
             id: owned ? row.id : null,
             updated_at_ms: owned ? row.updatedAt.getTime() : null };
}

const [command, ...args] = process.argv.slice(2);
try {
    let answer: unknown;
    if (command === 'seed')
        answer = await seed(args[0]);
    else if (command === 'queries')
        answer = await queries(args[0] ? args[0].split(',') : []);
    else if (command === 'set-status')
        answer = await setStatus(args[0], args[1]);
    else if (command === 'get-status')
        answer = await getStatus(args[0]);
    else
        throw new Error(`unknown command ${command}`);
    console.log(JSON.stringify(answer));
} catch (e) {
    console.error(String(e));
    process.exitCode = 1;
} finally {
    await prisma.$disconnect();
}
