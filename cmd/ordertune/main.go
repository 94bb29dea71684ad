// Command ordertune is Ordertune's single binary: the API server, the IBKR
// simulator, the demo and the operator's tools, as subcommands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// app is what every subcommand gets from the process: its standard streams
// and environment, passed in so tests can run commands in-process.
type app struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

// command is one subcommand: it runs until done or until ctx ends
// (SIGINT/SIGTERM), and returns an error rather than exiting.
type command struct {
	run     func(ctx context.Context, a *app, args []string) error
	summary string
}

func commands() map[string]command {
	return map[string]command{
		"serve":   {cmdServe, "run the API, the web UI and the workers"},
		"demo":    {cmdDemo, "local PostgreSQL, simulator, server and demo data (make run)"},
		"migrate": {cmdMigrate, "migrate up|down|version: apply or inspect the schema"},
		"sim":     {cmdSim, "sim [register]: the IBKR Web API simulator, or register a simulated consumer"},
		"ibkr":    {cmdIBKR, "ibkr test-connection --creds FILE: check IBKR credentials step by step"},
		"user":    {cmdUser, "user create --email E --role admin|subscriber: add an account (password on stdin or in --password-file)"},
		"keys":    {cmdKeys, "keys generate|rotate|rewrap|audit-generate: master keys, rotation, online re-sealing; the audit signing key"},
		"audit":   {cmdAudit, "audit verify [--checkpoints FILE]: check the audit hash chain, and against signed checkpoints"},
		"devdb":   {cmdDevDB, "devdb -- CMD ARGS: run CMD with a throwaway PostgreSQL cluster (make test)"},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a := &app{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	if err := run(ctx, a, os.Args[1:]); err != nil {
		var ec exitCode
		if errors.As(err, &ec) {
			os.Exit(int(ec)) // the command has said why
		}
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "ordertune:", err)
		}
		os.Exit(1)
	}
}

// exitCode is an error that asks for a specific exit status; its message
// has already been printed.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func run(ctx context.Context, a *app, args []string) error {
	cmds := commands()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(a.stderr, cmds)
		if len(args) == 0 {
			return errors.New("name a command")
		}
		return nil
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		usage(a.stderr, cmds)
		return fmt.Errorf("unknown command %q", args[0])
	}
	return cmd.run(ctx, a, args[1:])
}

func usage(w io.Writer, cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("usage: ordertune COMMAND [flags]\n\ncommands:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  %-9s %s\n", n, cmds[n].summary)
	}
	fmt.Fprint(w, b.String())
}

// newFlagSet returns a flag set that reports errors instead of exiting.
func newFlagSet(a *app, name string) *flag.FlagSet {
	fs := flag.NewFlagSet("ordertune "+name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	return fs
}
