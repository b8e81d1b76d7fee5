import { parseArgs, type ParseArgsConfig } from 'node:util';
import { AppError, isAppError } from '../errors.js';

/**
 * The shared shell of every job in jobs/: flags declared once with their help
 * text, `--help` generated from them, unknown flags and bad values rejected
 * with a clear message, AppErrors printed as `error [CODE]: message` with exit
 * code 2, anything unexpected with its stack and exit code 1.
 */

export interface FlagSpec {
  readonly type: 'string' | 'boolean';
  readonly description: string;
  readonly short?: string;
  /** Shown in help; string flags only. */
  readonly value?: string;
  readonly default?: string | boolean;
  readonly choices?: readonly string[];
}

export interface JobSpec<F extends Record<string, FlagSpec>> {
  readonly name: string;
  readonly summary: string;
  readonly usage: string;
  readonly flags: F;
  readonly positionals?: { readonly max: number };
  readonly details?: string;
}

type FlagValues<F extends Record<string, FlagSpec>> = {
  [K in keyof F]: F[K]['type'] extends 'boolean' ? boolean : F[K]['default'] extends string ? string : string | undefined;
};

export interface ParsedJobArgs<F extends Record<string, FlagSpec>> {
  readonly flags: FlagValues<F>;
  readonly positionals: string[];
}

export function helpText<F extends Record<string, FlagSpec>>(spec: JobSpec<F>): string {
  const rows = Object.entries(spec.flags).map(([name, flag]) => {
    const left = `${flag.short ? `-${flag.short}, ` : '    '}--${flag.type === 'boolean' && flag.default === true ? '[no-]' : ''}${name}${flag.type === 'string' ? ` <${flag.value ?? 'value'}>` : ''}`;
    const extra = [flag.choices ? `one of: ${flag.choices.join(', ')}` : '', flag.default !== undefined && flag.default !== false ? `default: ${String(flag.default)}` : '']
      .filter(Boolean)
      .join('; ');
    return [left, `${flag.description}${extra ? ` (${extra})` : ''}`] as const;
  });
  rows.push(['-h, --help', 'Show this help and exit']);
  const width = Math.max(...rows.map(([left]) => left.length)) + 2;
  const lines = rows.map(([left, right]) => `  ${left.padEnd(width)}${right}`);
  return `${spec.name} — ${spec.summary}\n\nUsage: ${spec.usage}\n\nOptions:\n${lines.join('\n')}\n${spec.details ? `\n${spec.details.trim()}\n` : ''}`;
}

export function parseJobArgs<F extends Record<string, FlagSpec>>(spec: JobSpec<F>, argv: string[]): ParsedJobArgs<F> | 'help' {
  const options: NonNullable<ParseArgsConfig['options']> = { help: { type: 'boolean', short: 'h' } };
  for (const [name, flag] of Object.entries(spec.flags)) {
    options[name] = { type: flag.type, ...(flag.short && { short: flag.short }), ...(flag.default !== undefined && { default: flag.default }) };
  }
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, allowNegative: true, strict: true });
  } catch (error) {
    throw new AppError('USAGE', `${(error as Error).message.split('\n')[0]} (see --help)`);
  }
  if (parsed.values.help) return 'help';
  for (const [name, flag] of Object.entries(spec.flags)) {
    const value = parsed.values[name];
    if (flag.choices && typeof value === 'string' && !flag.choices.includes(value)) {
      throw new AppError('USAGE', `--${name} must be one of ${flag.choices.join(', ')}; got '${value}'`);
    }
  }
  const max = spec.positionals?.max ?? 0;
  if (parsed.positionals.length > max) {
    throw new AppError('USAGE', `unexpected argument '${parsed.positionals[max]}' (see --help)`);
  }
  return { flags: parsed.values as FlagValues<F>, positionals: parsed.positionals };
}

/** Runs a job's main function with the shared error handling; sets process.exitCode. */
export async function runJob<F extends Record<string, FlagSpec>>(
  spec: JobSpec<F>,
  main: (args: ParsedJobArgs<F>) => Promise<void>,
  argv = process.argv.slice(2),
): Promise<void> {
  try {
    const args = parseJobArgs(spec, argv);
    if (args === 'help') {
      process.stdout.write(helpText(spec));
      return;
    }
    await main(args);
  } catch (error) {
    if (isAppError(error)) {
      process.stderr.write(`error [${error.code}]: ${error.message}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`unexpected failure: ${(error as Error)?.stack ?? String(error)}\n`);
      process.exitCode = 1;
    }
  }
}

/** Parses an integer flag value with bounds, or throws a USAGE error naming the flag. */
export function integerFlag(name: string, raw: string, min: number, max: number): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new AppError('USAGE', `--${name} must be an integer from ${min} to ${max}; got '${raw}'`);
  return n;
}
