// Package watch redraws a report that is read again and again: in place on a terminal, without
// clearing it first (so nothing flickers), or appended frame after frame to a pipe or file.
// It only writes bytes to the writers it is given; reading the cluster and detecting a terminal
// are the command's.
package watch

import (
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// Mode is how frames are written.
type Mode int

const (
	// Append writes each changed frame, with its header line, after the previous one and a
	// blank line, with no escape codes: for pipes and files, like kubectl get --watch.
	Append Mode = iota
	// Terminal redraws the frame in place: one write per frame that moves the cursor home,
	// overwrites each line and erases what is left of it, then erases below.
	Terminal
	// Stream writes each changed frame as it is (one JSON or YAML document), without a header:
	// for scripts. Notices go to the error writer, as in Append.
	Stream
)

// Escape sequences of ECMA-48 and the DEC terminals every terminal emulator follows.
const (
	home        = "\x1b[H"
	eraseLine   = "\x1b[K"
	eraseBelow  = "\x1b[J"
	hideCursor  = "\x1b[?25l"
	showCursor  = "\x1b[?25h"
	saveCursor  = "\x1b7"
	restoreCurs = "\x1b8"
)

// timeFormat is the header's time, as watch(1) prints it.
const timeFormat = time.ANSIC

// Frame is what one read shows: warnings about it (metrics unavailable, say) and the report.
type Frame struct {
	Warnings []string
	Body     []byte
}

// Screen writes the frames of one watch. Its zero value is not usable: set Out, ErrOut and Title.
type Screen struct {
	Out, ErrOut io.Writer
	Mode        Mode
	// Title is the header's left side: "Every 5s: kubectl overcommit savings".
	Title string
	// Size returns the terminal's width and height (0 when unknown). Terminal mode cuts lines
	// and frames to it, since a wrapped line or a frame taller than the terminal scrolls it, and
	// the next frame, drawn from the top, would then no longer cover the last one.
	Size func() (width, height int)

	drawn bool // a frame was written (in Terminal mode: the cursor is hidden)
	// shown is what the last frame showed below its header; a read that shows the same again
	// only updates the header's time (Terminal) or writes nothing (Append, Stream).
	shown string
	// width and height are the terminal's size at the last frame: a frame cut for another size
	// is drawn again.
	width, height int
	// good is the last successful read and when it was made, shown again under a read error.
	good   Frame
	goodAt time.Time
	// failed is the error of the last read, "" if it succeeded.
	failed string
	// warned are the warnings already written to ErrOut (Append, Stream), each said once.
	warned map[string]bool
}

// Show writes the frame of a successful read made at at, if it shows something new.
func (s *Screen) Show(at time.Time, f Frame) error {
	recovered := s.failed != ""
	s.good, s.goodAt, s.failed = f, at, ""
	if s.Mode != Terminal {
		if err := s.notices(at, f.Warnings, recovered); err != nil {
			return err
		}
	}
	return s.draw(at, notes(f, ""), string(f.Body))
}

// Fail reports a read made at at that failed, keeping the last good frame on screen: on a
// terminal the error is a line of the frame, otherwise a line on ErrOut, once until it changes.
func (s *Screen) Fail(at time.Time, readErr error) error {
	msg := readErr.Error()
	if s.Mode == Terminal {
		s.failed = msg
		line := fmt.Sprintf("Error: %s (below: the read of %s)", msg, s.goodAt.Format(time.TimeOnly))
		return s.draw(at, notes(s.good, line), string(s.good.Body))
	}
	if msg == s.failed {
		return nil
	}
	s.failed = msg
	_, err := fmt.Fprintf(s.ErrOut, "%s error: %s; keeping the read of %s and trying again\n",
		at.Format(time.TimeOnly), msg, s.goodAt.Format(time.TimeOnly))
	return err
}

// Close ends the watch: on a terminal it shows the cursor again and leaves it on a new line
// below the frame. It writes nothing if no frame was written.
func (s *Screen) Close() error {
	if s.Mode != Terminal || !s.drawn {
		return nil
	}
	_, err := io.WriteString(s.Out, "\n"+showCursor)
	return err
}

// notices writes to ErrOut the warnings not said before and, after a failed read, that reading
// works again.
func (s *Screen) notices(at time.Time, warnings []string, recovered bool) error {
	var b strings.Builder
	if recovered {
		fmt.Fprintf(&b, "%s read the cluster again\n", at.Format(time.TimeOnly))
	}
	for _, w := range warnings {
		if s.warned == nil {
			s.warned = map[string]bool{}
		}
		if !s.warned[w] {
			s.warned[w] = true
			fmt.Fprintf(&b, "Warning: %s\n", w)
		}
	}
	if b.Len() == 0 {
		return nil
	}
	_, err := io.WriteString(s.ErrOut, b.String())
	return err
}

// notes are the lines a terminal frame shows above the report: the error of the last read and
// the warnings, which have nowhere else to go on a terminal without breaking the frame.
func notes(f Frame, errLine string) []string {
	var lines []string
	if errLine != "" {
		lines = append(lines, errLine)
	}
	for _, w := range f.Warnings {
		lines = append(lines, "Warning: "+w)
	}
	return lines
}

// draw writes the frame if what it shows changed, or else on a terminal the header's new time.
// notes are shown on a terminal only.
func (s *Screen) draw(at time.Time, notes []string, body string) error {
	if s.Mode != Terminal {
		notes = nil
	}
	below := strings.Join(append(notes, body), "\n")
	changed := !s.drawn || below != s.shown
	s.shown = below
	var out string
	switch {
	case s.Mode == Stream && changed:
		out = body
	case s.Mode == Append && changed:
		if s.drawn {
			out = "\n"
		}
		out += s.header(at, 0) + "\n" + body
	case s.Mode == Terminal:
		width, height := s.size()
		if changed || width != s.width || height != s.height {
			s.width, s.height = width, height
			out = terminalFrame(s.header(at, width), notes, body, width, height)
		} else {
			// Only the time changed: rewrite the header line and put the cursor back.
			out = saveCursor + home + cut(s.header(at, width), width) + eraseLine + restoreCurs
		}
	}
	if out == "" {
		return nil
	}
	if s.Mode == Terminal && !s.drawn {
		out = hideCursor + out
	}
	s.drawn = true
	// One write per frame: the terminal never shows half of one.
	_, err := io.WriteString(s.Out, out)
	return err
}

func (s *Screen) size() (width, height int) {
	if s.Size == nil {
		return 0, 0
	}
	return s.Size()
}

// header is the title and the time of the read, the time right-aligned to width if known. On a
// terminal too narrow for both the title is shortened, not the time, which is what changes.
func (s *Screen) header(at time.Time, width int) string {
	const gap = "   "
	t := at.Format(timeFormat)
	title := []rune(s.Title)
	if width <= 0 {
		return s.Title + gap + t
	}
	room := width - 1 - len(gap) - utf8.RuneCountInString(t)
	if len(title) > room {
		if room < len("...") {
			return cut(s.Title+gap+t, width)
		}
		title = append(title[:room-len("...")], []rune("...")...)
	}
	return string(title) + strings.Repeat(" ", room-len(title)+len(gap)) + t
}

// terminalFrame is a whole frame for a terminal of the given size (0: unknown): home, each line
// followed by erase-to-end-of-line, then erase-below. The last line has no newline, so that a
// frame as tall as the terminal does not scroll it. The notes are wrapped, the report's lines
// cut, since a table's columns only line up unwrapped.
func terminalFrame(header string, notes []string, body string, width, height int) string {
	lines := []string{header, ""}
	for _, n := range notes {
		for _, l := range strings.Split(n, "\n") { // a joined error has a line per error
			lines = append(lines, wrap(l, width)...)
		}
	}
	lines = append(lines, strings.Split(strings.TrimSuffix(body, "\n"), "\n")...)
	if height > 0 && len(lines) > height {
		more := len(lines) - height + 1
		lines = append(lines[:height-1], fmt.Sprintf("... %d more lines: a taller terminal or -l shows them", more))
	}
	var b strings.Builder
	b.WriteString(home)
	for i, l := range lines {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(cut(l, width))
		b.WriteString(eraseLine)
	}
	b.WriteString(eraseBelow)
	return b.String()
}

// wrap breaks line into lines that fit a terminal width runes wide (0: unknown, no limit).
func wrap(line string, width int) []string {
	r := []rune(line)
	if width <= 1 || len(r) < width {
		return []string{line}
	}
	var lines []string
	for len(r) >= width {
		lines = append(lines, string(r[:width-1]))
		r = r[width-1:]
	}
	if len(r) > 0 {
		lines = append(lines, string(r))
	}
	return lines
}

// cut shortens line to fit a terminal width runes wide (0: unknown, no limit): a line the
// terminal wraps takes two rows. It leaves the last column empty, since erase-to-end-of-line with
// the cursor there would erase the line's last character.
func cut(line string, width int) string {
	if width <= 0 || utf8.RuneCountInString(line) < width {
		return line
	}
	return string([]rune(line)[:width-1])
}
