package dev.tether.pipeline;

import java.io.PrintStream;
import java.time.Duration;
import me.tongfei.progressbar.DelegatingProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

/**
 * Progress of a step (DESIGN 6): a live bar with count, rate and ETA on a terminal (me.tongfei
 * progressbar), plain lines every few seconds otherwise (logs, CI), from the same library. The plain lines go to
 * stdout with tether's other status lines ("Starting server", "Ready:", the summary): stderr, when it is not a
 * terminal, carries only the one-line error a script may read.
 */
public final class Progress implements AutoCloseable {
    private final ProgressBar bar;

    public Progress(String step, long total, PrintStream err) {
        boolean terminal = System.console() != null && System.console().isTerminal();
        ProgressBarBuilder builder = new ProgressBarBuilder()
                .setTaskName(step)
                .setInitialMax(total)
                .showSpeed()
                .setUnit(" req", 1)
                .setMaxRenderedLength(100);
        if (terminal) {
            builder.setStyle(ProgressBarStyle.COLORFUL_UNICODE_BLOCK).setUpdateIntervalMillis(200);
        } else {
            builder.setStyle(ProgressBarStyle.ASCII).setUpdateIntervalMillis((int) Duration.ofSeconds(5).toMillis())
                    .setConsumer(new DelegatingProgressBarConsumer(System.out::println, 100));
        }
        this.bar = builder.build();
    }

    public void step() {
        bar.step();
    }

    public void stepBy(long n) {
        bar.stepBy(n);
    }

    public void setExtraMessage(String message) {
        bar.setExtraMessage(message);
    }

    @Override
    public void close() {
        bar.close();
    }
}
