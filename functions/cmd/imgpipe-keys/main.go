// Command imgpipe-keys manages API keys, for operators. It talks to the
// Firestore of GOOGLE_CLOUD_PROJECT (with application default credentials,
// or the emulator under FIRESTORE_EMULATOR_HOST).
//
//	imgpipe-keys create -name "catalogue team" [-rate 600] [-inflight 100000]
//	imgpipe-keys list
//	imgpipe-keys revoke ID-OR-PREFIX
//
// A key's secret is printed once by create and stored nowhere: Firestore
// holds its SHA-256 only.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"cloud.google.com/go/firestore"

	"github.com/imgpipe/imgpipe/shared/access"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	ctx := context.Background()
	project := os.Getenv("GOOGLE_CLOUD_PROJECT")
	if project == "" {
		fmt.Fprintln(os.Stderr, "imgpipe-keys: GOOGLE_CLOUD_PROJECT is not set")
		os.Exit(2)
	}
	fs, err := firestore.NewClient(ctx, project)
	if err != nil {
		fmt.Fprintln(os.Stderr, "imgpipe-keys:", err)
		os.Exit(1)
	}
	defer fs.Close()
	keys := &access.Keys{FS: fs}
	switch os.Args[1] {
	case "create":
		f := flag.NewFlagSet("create", flag.ExitOnError)
		name := f.String("name", "", "who the key is for (required)")
		rate := f.Int("rate", 600, "API calls per minute (0 = unlimited)")
		inflight := f.Int("inflight", 100_000, "images in unfinished requests at once (0 = unlimited)")
		_ = f.Parse(os.Args[2:])
		if *name == "" {
			fmt.Fprintln(os.Stderr, "imgpipe-keys create: -name is required")
			os.Exit(2)
		}
		secret, key, err := keys.Create(ctx, *name, *rate, *inflight)
		exitOn(err)
		fmt.Printf("key %s for %q (%d calls/min, %d images in flight)\n%s\n", key.ID[:12], key.Name, key.RatePerMinute, key.MaxInFlight, secret)
	case "list":
		all, err := keys.List(ctx)
		exitOn(err)
		for _, k := range all {
			state := "active"
			if k.Revoked {
				state = "revoked"
			}
			fmt.Printf("%s  %-8s %5d/min %7d in flight  %s  %s\n", k.ID[:12], state, k.RatePerMinute, k.MaxInFlight, k.CreatedAt.Format("2006-01-02"), k.Name)
		}
	case "revoke":
		if len(os.Args) != 3 {
			usage()
		}
		exitOn(keys.Revoke(ctx, os.Args[2]))
		fmt.Println("revoked")
	default:
		usage()
	}
}

func exitOn(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "imgpipe-keys:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: imgpipe-keys create -name NAME [-rate N] [-inflight N] | list | revoke ID-OR-PREFIX")
	os.Exit(2)
}
