// Command payment-service is an example service: it registers with the
// local Shoal agent as "payment" and answers GET / with its instance ID.
// See examples/README.md.
package main

import "github.com/shoal-sd/shoal/examples/internal/demoservice"

func main() {
	demoservice.Service{Name: "payment", DefaultAddr: "127.0.0.1:8082", Tags: []string{"v1", "http"}}.Main()
}
