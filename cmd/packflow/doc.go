// Command packflow is the one binary of packflow: the processes of the
// platform and its command-line tools.
//
//	packflow api       serve the HTTP API
//	packflow worker    run tasks (publish, install, execute) as a worker node
//	packflow dev       api and worker in one process, with an embedded Redis
//	                   and a local data dir when no Redis is configured
//	packflow validate  check a package (.zip or directory) as publishing would
//	packflow pack      pack a package directory into a .zip
//	packflow version   print the version
//
// and client commands that call the API, one per flow: login, context,
// accounts, tokens, upload, publish, packages, versions, activate,
// active-version, installs, credentials, servers, blueprints, deploy
// (-follow, -plan), executions, logs (-follow), cancel, rerun, schedules,
// tasks, nodes, and completion (bash, zsh, fish). They print tables, or
// the API's records with -o json|yaml, and exit 0 when what they did (or
// watched) succeeded, 1 when it failed, 2 on a usage error and 3 when a
// watched execution was cancelled or timed out.
//
// A client command goes to -api-url (PACKFLOW_API_URL), else the context
// -context (PACKFLOW_CONTEXT) names, else http://$PACKFLOW_LISTEN, else
// the current context, else http://127.0.0.1:8080. Contexts (an API URL
// and a token) live in <user config dir>/packflow/config.json (0600):
// packflow login adds one, packflow context use switches, and packflow
// dev records itself as the context "dev", so a client next to it needs
// no set-up.
//
// Without PACKFLOW_REDIS_URL, dev runs the redis-server on PATH with an
// append-only file in <data dir>/redis (fsynced every second), or else an
// embedded in-memory Redis; both require the password in <data
// dir>/redis.password and listen on loopback only.
//
// Every subcommand takes --help. Settings come from flags, whose defaults
// come from PACKFLOW_* environment variables (a flag given on the command
// line wins). Every value is checked at start; each bad one is reported
// with the flag or variable it came from, and the process exits with
// status 2.
//
// The processes stop gracefully on SIGINT or SIGTERM: the API stops
// accepting requests and finishes those in flight, the worker lets running
// tasks finish (or hands them back to their queue), then connections
// close. Components stop in the reverse of the order they started in.
package main
