// Command user-service is an example service: it registers with the local
// Shoal agent as "user" and answers GET / with its instance ID. See
// examples/README.md.
package main

import "github.com/shoal-sd/shoal/examples/internal/demoservice"

func main() {
	demoservice.Service{Name: "user", DefaultAddr: "127.0.0.1:8081", Tags: []string{"v1", "http"}}.Main()
}
