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
// and client commands that call the API and print its JSON answers:
//
//	packflow accounts  list accounts, or create one
//	packflow tokens    list, create or revoke API tokens
//	packflow upload    upload a package archive
//	packflow publish   publish an upload to the library (-wait to follow it)
//	packflow task      show a task's state, or wait for it
//	packflow nodes     list the live worker nodes
//
// The client commands take -api-url and -token (PACKFLOW_API_URL,
// PACKFLOW_TOKEN); next to packflow dev, the token defaults to the one it
// keeps in <data dir>/admin.token.
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
