// Package cli is the imgpipe command a user runs (functions/cmd/imgpipe):
// upload a catalogue and watch it finish, read a request's status and
// report, download its outputs, check a captured webhook delivery. It
// talks to the HTTP API only, as any client would, in the API's wire
// types (shared/wire), so it links no cloud client.
//
// Exit codes: 0 when every image is done, 2 when the request finished with
// failed images, 1 on any error; every error says what to do next.
//
// One file per verb (upload.go, status.go, report.go, download.go,
// verify.go); client.go holds what every call to the API shares, and
// progress.go the progress bar.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/term"
)

// Exit codes.
const (
	ExitOK     = 0 // every image done
	ExitError  = 1 // the command failed
	ExitFailed = 2 // the request finished with failed images
)

// Env is what a run reads besides its arguments.
type Env struct {
	Getenv func(string) string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Terminal says whether Stdout is a terminal (a live bar) or not
	// (plain progress lines).
	Terminal bool
	// Poll is the status polling interval of --wait (default 1 s).
	Poll time.Duration
	// Client is the HTTP client (default: 30 s timeout).
	Client *http.Client
}

// OSEnv is the process's environment.
func OSEnv() Env {
	return Env{Getenv: os.Getenv, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		Terminal: term.IsTerminal(int(os.Stdout.Fd()))}
}

const usage = `imgpipe: compress a catalogue's images with an imgpipe deployment.

  imgpipe upload FILE.csv|FILE.json [--quality N] [--webhook URL] [--wait]
                 [--max-width W] [--max-height H] [--sizes thumb:200,medium:800x800]
  imgpipe status ID
  imgpipe report ID [-o FILE.csv]
  imgpipe download ID -d DIR
  imgpipe verify-webhook [--secret whsec_...] < delivery.http

Every command takes --url (or IMGPIPE_URL), --key (or IMGPIPE_API_KEY) and
--json (machine-readable output). The key goes over https://, or over plain
http:// to this machine only; --insecure-http allows http:// to another host.
verify-webhook reads the secret from --secret or IMGPIPE_WEBHOOK_SECRET.
Exit codes: 0 every image done, 2 the request finished with failed images,
1 an error.
`

// Run runs the command in args (without the program name) and returns its
// exit code.
func Run(ctx context.Context, args []string, env Env) int {
	if env.Poll == 0 {
		env.Poll = time.Second
	}
	if env.Client == nil {
		env.Client = &http.Client{Timeout: 30 * time.Second}
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(env.Stderr, usage)
		if len(args) == 0 {
			return ExitError
		}
		return ExitOK
	}
	c := &command{env: env}
	fs := c.flags(args[0])
	run := c.verb(ctx, args[0], fs)
	if run == nil {
		fmt.Fprintf(env.Stderr, "imgpipe: unknown command %q\n\n%s", args[0], usage)
		return ExitError
	}
	positional, err := c.parse(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK // the verb's usage, asked for
	}
	if err != nil {
		return ExitError
	}
	code, err := run(positional)
	if err != nil {
		msg := c.redact(err.Error())
		if c.json {
			_ = json.NewEncoder(env.Stdout).Encode(map[string]string{"error": msg})
		}
		fmt.Fprintln(env.Stderr, "imgpipe:", msg)
		return ExitError
	}
	return code
}

// flags are the flags every verb takes. Secrets are never flag defaults:
// the flag package prints defaults in every usage text, so the environment
// is read after parsing instead (parse).
func (c *command) flags(verb string) *flag.FlagSet {
	fs := flag.NewFlagSet("imgpipe "+verb, flag.ContinueOnError)
	fs.SetOutput(c.env.Stderr)
	fs.StringVar(&c.base, "url", "", "API base URL (default: the IMGPIPE_URL variable)")
	fs.StringVar(&c.key, "key", "", "API key (default: the IMGPIPE_API_KEY variable, which keeps it out of the process list)")
	fs.BoolVar(&c.insecureHTTP, "insecure-http", false, "allow sending the API key over plain http:// to a host other than this machine")
	fs.BoolVar(&c.json, "json", false, "machine-readable output")
	return fs
}

// verb adds verb's own flags to fs and returns what runs it on the
// positional arguments; nil for a verb imgpipe does not know.
func (c *command) verb(ctx context.Context, verb string, fs *flag.FlagSet) func(args []string) (int, error) {
	switch verb {
	case "upload":
		o := uploadFlags(fs)
		return func(a []string) (int, error) { return c.upload(ctx, a, *o) }
	case "status":
		return func(a []string) (int, error) { return c.status(ctx, a) }
	case "report":
		out := fs.String("o", "", "write the report to this file (default: standard output)")
		return func(a []string) (int, error) { return c.report(ctx, a, *out) }
	case "download":
		dir := fs.String("d", "", "folder for the outputs (created if missing)")
		return func(a []string) (int, error) { return c.download(ctx, a, *dir) }
	case "verify-webhook":
		fs.StringVar(&c.secret, "secret", "", "the webhook signing secret, whsec_... (default: the IMGPIPE_WEBHOOK_SECRET variable)")
		return func(a []string) (int, error) { return c.verifyWebhook(a, c.secret) }
	}
	return nil
}

// parse parses args, whose flags may come before or after the positional
// arguments, and returns the positional ones. A flag the user did not give
// takes its environment variable (flagVariables).
func (c *command) parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for name, v := range map[string]*string{"url": &c.base, "key": &c.key, "secret": &c.secret} {
		if !given[name] {
			*v = c.env.Getenv(flagVariables[name])
		}
	}
	return positional, nil
}

// flagVariables are the environment variables that stand in for a flag
// the user did not give.
var flagVariables = map[string]string{"url": "IMGPIPE_URL", "key": "IMGPIPE_API_KEY", "secret": "IMGPIPE_WEBHOOK_SECRET"}

type command struct {
	env          Env
	base         string
	key          string
	secret       string // verify-webhook's
	insecureHTTP bool
	json         bool
}

// redact blanks the API key and the webhook secret out of msg: an error
// may quote what a server answered, and a server (or whatever --url points
// at) may echo the request's Authorization header.
func (c *command) redact(msg string) string {
	for _, secret := range []string{c.key, c.secret} {
		if len(secret) >= minRedacted {
			msg = strings.ReplaceAll(msg, secret, "[redacted]")
		}
	}
	return msg
}

// minRedacted is the shortest secret redact blanks out; a shorter one is
// no real key, and blanking it would garble the message.
const minRedacted = 8

func (c *command) out(format string, a ...any) { fmt.Fprintf(c.env.Stdout, format, a...) }

// failedCode is the exit code of a request with failed images: ExitFailed
// when there are any, else ExitOK.
func failedCode(failed int) int {
	if failed > 0 {
		return ExitFailed
	}
	return ExitOK
}
