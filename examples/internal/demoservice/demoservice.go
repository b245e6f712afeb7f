// Package demoservice is the body shared by the example services: an HTTP
// server that registers itself with the local Shoal agent, with a health
// check on its own /health, and deregisters when told to stop.
package demoservice

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/shoal-sd/shoal/api"
)

// Service describes one example service.
type Service struct {
	// Name is the name it registers under, the one callers discover.
	Name string
	// DefaultAddr is the --addr default.
	DefaultAddr string
	// Tags are registered with every instance.
	Tags []string
}

// Answer is the JSON body of GET /.
type Answer struct {
	Service string `json:"service"`
	ID      string `json:"id"`
	Addr    string `json:"addr"`
}

// Main parses the command line, runs the service until SIGINT or SIGTERM
// and exits: 0 after a clean deregistration, 1 on any error.
func (s Service) Main() {
	fs := flag.NewFlagSet(s.Name+"-service", flag.ExitOnError)
	addr := fs.String("addr", s.DefaultAddr, "host:port to listen on (port 0: any free port)")
	agent := fs.String("agent", "", "Shoal agent HTTP address (default $"+api.EnvHTTPAddr+", else "+api.DefaultAddr+")")
	_ = fs.Parse(os.Args[1:]) // ExitOnError: Parse exits on a bad flag

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("service", s.Name)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := s.Run(ctx, *addr, &api.Client{Addr: *agent}, logger); err != nil {
		logger.Error("stopped", "err", err)
		os.Exit(1)
	}
}

// Run listens on addr, registers the instance with c's agent and serves
// until ctx ends; it then deregisters the instance, lets calls in flight
// finish and returns.
func (s Service) Run(ctx context.Context, addr string, c *api.Client, logger *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on --addr %s: %w", addr, err)
	}
	defer ln.Close()
	tcp := ln.Addr().(*net.TCPAddr)

	// A wildcard listener has no address callers could dial: leave the
	// service's address empty, so the agent gives its node's, and check
	// it on loopback, where the local agent can reach it.
	host, checkHost := tcp.IP.String(), tcp.IP.String()
	if tcp.IP.IsUnspecified() {
		host, checkHost = "", "127.0.0.1"
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	hostPort := net.JoinHostPort(checkHost, strconv.Itoa(tcp.Port))
	id := s.Name + "-" + hostPort
	if host != checkHost { // wildcard: name the instance after the machine
		id = s.Name + "-" + host + "-" + strconv.Itoa(tcp.Port)
	}
	answer, err := json.Marshal(Answer{Service: s.Name, ID: id, Addr: hostPort})
	if err != nil {
		return fmt.Errorf("encode answer: %w", err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(append(answer, '\n'))
	})
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	reg := &api.AgentServiceRegistration{
		ID:   id,
		Name: s.Name,
		Tags: s.Tags,
		Port: tcp.Port,
		Meta: map[string]string{"example": "true"},
		Check: &api.AgentServiceCheck{
			Name:     s.Name + " HTTP /health",
			HTTP:     "http://" + hostPort + "/health",
			Interval: "2s",
			Timeout:  "1s",
			// An instance killed without deregistering goes critical,
			// and is then removed instead of lingering forever.
			DeregisterCriticalServiceAfter: "1m",
		},
	}
	if !tcp.IP.IsUnspecified() {
		reg.Address = tcp.IP.String()
	}
	if err := c.Register(ctx, reg); err != nil {
		_ = srv.Close()
		<-served
		return fmt.Errorf("register %s with the agent: %w", id, err)
	}
	logger.Info("registered", "id", id, "addr", hostPort)

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-served:
		served <- serveErr
	}

	// Deregister first, so that balancers stop picking this instance
	// while the server still answers the calls already on their way.
	stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	derr := c.Deregister(stopCtx, id)
	if derr != nil {
		derr = fmt.Errorf("deregister %s: %w", id, derr)
	} else {
		logger.Info("deregistered", "id", id)
	}
	serr := srv.Shutdown(stopCtx)
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		serr = errors.Join(serr, fmt.Errorf("serve: %w", err))
	}
	return errors.Join(derr, serr)
}
