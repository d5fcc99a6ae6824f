// Command imgpipe is the user's command line: upload a catalogue and watch
// it finish, read status and reports, download outputs, verify webhook
// deliveries. See functions/cli.
package main

import (
	"context"
	"os"
	"os/signal"

	"github.com/imgpipe/imgpipe/functions/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := cli.Run(ctx, os.Args[1:], cli.OSEnv())
	stop()
	os.Exit(code)
}
