// Command shoal is the Shoal agent and its command-line client: `shoal
// agent` runs an agent, the other subcommands talk to one over its local
// HTTP API. Run `shoal --help` for the list.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
