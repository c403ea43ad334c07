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
                    .setConsumer(new DelegatingProgressBarConsumer(onceComplete(System.out::println), 100));
        }
        this.bar = builder.build();
    }

    /**
     * The library renders a bar that reached its end both on its next tick and on close (two "100%" lines, often
     * within milliseconds); a plain log gets the first only.
     */
    static java.util.function.Consumer<String> onceComplete(java.util.function.Consumer<String> print) {
        java.util.concurrent.atomic.AtomicBoolean complete = new java.util.concurrent.atomic.AtomicBoolean();
        return line -> {
            if (line.contains(" 100% ") && complete.getAndSet(true)) {
                return;
            }
            print.accept(line);
        };
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
