// Command client is an example caller: it discovers the "user" and
// "payment" services through api.Balancer (round-robin over passing
// instances) and calls each in turn, printing which instance answered.
// See examples/README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/shoal-sd/shoal/api"
)

// answer is the JSON body the example services send for GET /.
type answer struct {
	Service string `json:"service"`
	ID      string `json:"id"`
}

func main() {
	agent := flag.String("agent", "", "Shoal agent HTTP address (default $"+api.EnvHTTPAddr+", else "+api.DefaultAddr+")")
	interval := flag.Duration("interval", time.Second, "pause between rounds of calls")
	count := flag.Int("count", 0, "stop after this many rounds (one call to each service); 0 means run until interrupted")
	timeout := flag.Duration("timeout", 2*time.Second, "bound on each call, retries included")
	flag.Parse()
	if *count < 0 || *interval < 0 || *timeout <= 0 {
		fmt.Fprintln(os.Stderr, "client: --count and --interval must not be negative, --timeout must be positive")
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	failed, err := run(ctx, &api.Client{Addr: *agent}, []string{"user", "payment"}, *count, *interval, *timeout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(1)
	}
	if failed > 0 {
		fmt.Fprintf(os.Stderr, "client: %d calls failed\n", failed)
		os.Exit(1)
	}
}

// run makes count rounds of calls (0: until ctx ends), one to each service
// per round, and returns how many calls failed.
func run(ctx context.Context, c *api.Client, services []string, count int, interval, timeout time.Duration) (int, error) {
	balancers := make([]*api.Balancer, len(services))
	for i, name := range services {
		// The zero BalancerConfig: round-robin over the instances whose
		// checks all pass, 3 attempts per Do, a breaker per instance.
		b, err := api.NewBalancer(ctx, c, name, api.BalancerConfig{})
		if err != nil {
			return 0, err
		}
		defer b.Close()
		balancers[i] = b
	}

	httpClient := &http.Client{}
	failed := 0
	for round := 1; count == 0 || round <= count; round++ {
		for _, b := range balancers {
			if err := call(ctx, httpClient, b, round, timeout); err != nil {
				if ctx.Err() != nil {
					return failed, nil
				}
				failed++
				fmt.Printf("round %d: %s failed: %v\n", round, b.State().Service, err)
			}
		}
		if count != 0 && round == count {
			break
		}
		select {
		case <-ctx.Done():
			return failed, nil
		case <-time.After(interval):
		}
	}
	return failed, nil
}

// call makes one call through b: Do picks an instance and, if the call
// fails, retries on another one.
func call(ctx context.Context, hc *http.Client, b *api.Balancer, round int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	attempt := 0
	return b.Do(ctx, func(ctx context.Context, in api.Instance) error {
		attempt++
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+in.Addr+"/", nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			_, _ = io.Copy(io.Discard, resp.Body)
			return fmt.Errorf("%s answered %s", in.ID, resp.Status)
		}
		var a answer
		if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
			return fmt.Errorf("%s: decode answer: %w", in.ID, err)
		}
		if a.ID == "" {
			return errors.New(in.ID + ": answer names no instance")
		}
		fmt.Printf("round %d: %s answered by %s at %s (attempt %d)\n", round, a.Service, a.ID, in.Addr, attempt)
		return nil
	})
}
