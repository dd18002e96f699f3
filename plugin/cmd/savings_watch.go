package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/overcommit-dev/overcommit/plugin/output"
	"github.com/overcommit-dev/overcommit/plugin/savings"
	"github.com/overcommit-dev/overcommit/plugin/watch"
)

// defaultWatchInterval is --interval: short enough to follow a rollout or an enable, long
// enough that a watch on a large cluster (a report reads every pod) is not a load of its own.
const defaultWatchInterval = 5 * time.Second

// watchFlags are savings' -w/--watch and --interval.
type watchFlags struct {
	watch       bool
	interval    time.Duration
	intervalSet bool
	// title is the header line's command: "Every 5s: kubectl overcommit savings --pods".
	title string
	// now and wait are the clock; tests set them, nil is the real one.
	now  func() time.Time
	wait func(context.Context, time.Duration)
}

func (w *watchFlags) add(cmd *cobra.Command) {
	cmd.Flags().BoolVarP(&w.watch, "watch", "w", false, "After the report, read the cluster again every --interval and show the report again when it changed, until Ctrl-C; -o json writes one compact document per line, -o csv is not allowed")
	cmd.Flags().DurationVar(&w.interval, "interval", defaultWatchInterval, "With --watch, the wait between the end of one read and the start of the next (e.g. 2s, 1m)")
}

// complete notes whether --interval was given and names the command for the header: its own
// flags as given and the namespace, not kubectl's connection flags, which may hold a token.
func (w *watchFlags) complete(cmd *cobra.Command, namespace string) {
	w.intervalSet = cmd.Flags().Changed("interval")
	args := []string{"kubectl overcommit", cmd.Name()}
	if namespace != "" {
		args = append(args, "-n", namespace)
	}
	// VisitAll and Changed, since the flag set LocalNonPersistentFlags makes has not seen them set.
	cmd.LocalNonPersistentFlags().VisitAll(func(f *pflag.Flag) {
		switch {
		case !f.Changed || f.Name == "watch" || f.Name == "interval":
		case f.Value.Type() == "bool" && f.Value.String() == "true":
			args = append(args, "--"+f.Name)
		default:
			args = append(args, "--"+f.Name+"="+f.Value.String())
		}
	})
	w.title = fmt.Sprintf("Every %s: %s", shortDuration(w.interval), strings.Join(args, " "))
}

func (w *watchFlags) validate(format string) error {
	if !w.watch {
		if w.intervalSet {
			return errors.New("--interval is the wait between the reads of --watch; add -w/--watch")
		}
		return nil
	}
	if w.interval <= 0 {
		return invalidFlag("--interval", w.interval.String(), errors.New("must be a positive duration such as 5s"))
	}
	if format == savings.FormatCSV {
		return errors.New("--watch cannot be used with -o csv: a csv file has one header row, and a report per change " +
			"would repeat it; use -o json for one document per line per change")
	}
	return nil
}

// shortDuration is d without the zero units time.Duration prints: "1m", not "1m0s".
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// runWatch shows the report until ctx is done (Ctrl-C or SIGTERM), which is a success.
func (o *SavingsOptions) runWatch(ctx context.Context) error {
	s := &watch.Screen{Out: o.Out, ErrOut: o.ErrOut, Title: o.title, Mode: watch.Append}
	if o.output == output.FormatJSON || o.output == output.FormatYAML {
		s.Mode = watch.Stream
	} else if f, ok := o.Out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fd := int(f.Fd())
		s.Mode = watch.Terminal
		s.Size = func() (int, int) {
			w, h, err := term.GetSize(fd)
			if err != nil {
				return 0, 0 // unknown: nothing is cut
			}
			return w, h
		}
	}
	l := &watch.Loop{Screen: s, Interval: o.interval, Now: o.now, Wait: o.wait,
		Read: func(ctx context.Context) (watch.Frame, error) {
			r, warnings, err := o.read(ctx)
			if err != nil {
				return watch.Frame{}, err
			}
			body, err := o.render(r)
			return watch.Frame{Warnings: warnings, Body: body}, err
		}}
	return l.Run(ctx)
}

// render is one frame's report: the table, one compact JSON document on one line, or one YAML
// document after a "---" line.
func (o *SavingsOptions) render(r *savings.SavingsReport) ([]byte, error) {
	var b bytes.Buffer
	switch o.output {
	case output.FormatJSON:
		doc, err := json.Marshal(r)
		if err != nil {
			return nil, fmt.Errorf("encoding the savings report: %w", err)
		}
		b.Write(doc)
		b.WriteByte('\n')
	case output.FormatYAML:
		b.WriteString("---\n")
		if err := output.Encode(&b, output.FormatYAML, r); err != nil {
			return nil, fmt.Errorf("encoding the savings report: %w", err)
		}
	default:
		if err := r.WriteTable(&b); err != nil {
			return nil, err
		}
	}
	return b.Bytes(), nil
}
