package worker

import (
	"log/slog"
	"strings"
	"testing"
)

func TestAsynqLoggerLevels(t *testing.T) {
	var b strings.Builder
	l := asynqLogger{log: slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	l.Debug("hidden")
	l.Info("starting ", 3, " things")
	l.Warn("careful")
	l.Error("broke")
	l.Fatal("very broke") // logged, never exits
	out := b.String()
	for _, want := range []string{`level=INFO msg="starting 3 things"`, "level=WARN msg=careful", "level=ERROR msg=broke", `level=ERROR msg="very broke"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "hidden") {
		t.Errorf("debug line logged at info level:\n%s", out)
	}
}
