#!/usr/bin/env node
import { createRequire } from 'node:module'
import { UsageError } from './cli/admin-client.ts'
import { rollback, rollbackHelp, weight, weightHelp } from './cli/control.ts'
import { check, checkHelp } from './cli/check.ts'
import { demo, demoHelp } from './cli/demo.ts'
import { diff, diffHelp } from './cli/diff.ts'
import { explain, explainHelp } from './cli/explain.ts'
import { previewHelp, previewToken } from './cli/preview.ts'
import { serve, serveHelp } from './cli/serve.ts'
import { status, statusHelp } from './cli/status.ts'

interface Command {
  run: (argv: string[]) => Promise<number>
  help: string
}

const commands: Record<string, Command> = {
  serve: { run: serve, help: serveHelp },
  check: { run: check, help: checkHelp },
  diff: { run: diff, help: diffHelp },
  explain: { run: explain, help: explainHelp },
  demo: { run: demo, help: demoHelp },
  rollback: { run: rollback, help: rollbackHelp },
  weight: { run: weight, help: weightHelp },
  status: { run: status, help: statusHelp },
  'preview-token': { run: previewToken, help: previewHelp }
}

const usage = `Usage: strangler <command> [options]

Commands:
  serve     run the proxy
  check     validate config files (for config-PR CI)
  diff      the traffic impact of a config change
  explain   which context and side a request goes to
  demo      start two demo upstreams and the proxy on the default config
  rollback  send all of a context to legacy now (admin API)
  weight    set a context's effective weight now (admin API)
  status    what is live: config version, weights, overrides (admin API)
  preview-token  a signed token that sends a tester to one side of a context

Run 'strangler <command> --help' for a command's options; 'strangler --version' for the version.`

/** package.json is one folder up from both src/cli.ts and dist/cli.js. */
function version (): string {
  return (createRequire(import.meta.url)('../package.json') as { version: string }).version
}

async function main (argv: string[]): Promise<number> {
  const [name, ...rest] = argv
  if (name === undefined || name === '--help' || name === '-h') {
    process.stdout.write(`${usage}\n`)
    return name === undefined ? 2 : 0
  }
  if (name === '--version' || name === '-v') {
    process.stdout.write(`strangler-proxy ${version()}\n`)
    return 0
  }
  const command = commands[name]
  if (command === undefined) {
    process.stderr.write(`strangler: unknown command "${name}"\n\n${usage}\n`)
    return 2
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${command.help}\n`)
    return 0
  }
  try {
    return await command.run(rest)
  } catch (err) {
    if (err instanceof UsageError || (err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS') === true) {
      process.stderr.write(`strangler ${name}: ${(err as Error).message}\n\n${command.help}\n`)
      return 2
    }
    process.stderr.write(`strangler ${name}: ${(err as Error).message}\n`)
    return 1
  }
}

main(process.argv.slice(2)).then(code => { process.exitCode = code }, (err: unknown) => {
  process.stderr.write(`strangler: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exitCode = 1
})
