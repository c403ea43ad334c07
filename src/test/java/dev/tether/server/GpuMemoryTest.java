package dev.tether.server;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.OptionalLong;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The GPU-memory wait (DESIGN 3.9). The parser runs on output as nvidia-smi prints it for
 * {@code --query-compute-apps=pid,used_memory --format=csv,noheader,nounits}; the wait runs against a
 * stand-in nvidia-smi script (this machine has no GPU, so the real tool is absent here).
 */
class GpuMemoryTest {
    @TempDir
    Path dir;

    private static GpuMemory.ComputeApp app(int pid, long mib) {
        return new GpuMemory.ComputeApp(pid, OptionalLong.of(mib));
    }

    @Test
    void parsesOneLinePerProcessAndGpu() {
        // A vLLM server with tensor parallelism 2: one worker per GPU, plus a second process on GPU 0.
        String out = "2712, 71234\n2713, 71234\n3391, 512\n";
        assertThat(GpuMemory.parse(out)).containsExactly(app(2712, 71234), app(2713, 71234), app(3391, 512));
    }

    @Test
    void theSameProcessOnTwoGpusAppearsTwice() {
        String out = "15021, 40960\n15021, 39870\n";
        assertThat(GpuMemory.parse(out)).containsExactly(app(15021, 40960), app(15021, 39870));
        assertThat(GpuMemory.holding(GpuMemory.parse(out), Set.of(15021, 7))).containsExactly(15021);
    }

    @Test
    void noRunningProcessesFoundIsNoProcess() {
        // Older drivers print this line (to stdout, exit code 0) instead of nothing.
        assertThat(GpuMemory.parse("No running processes found\n")).isEmpty();
    }

    @Test
    void emptyOutputIsNoProcess() {
        assertThat(GpuMemory.parse("")).isEmpty();
        assertThat(GpuMemory.parse("\n")).isEmpty();
    }

    @Test
    void notAvailableMemoryStillCountsAsAProcess() {
        // MIG instances, or a process of another user seen without permission.
        String out = "4242, [N/A]\n4243, [Not Supported]\n4244, [Insufficient Permissions]\n";
        assertThat(GpuMemory.parse(out)).containsExactly(
                new GpuMemory.ComputeApp(4242, OptionalLong.empty()),
                new GpuMemory.ComputeApp(4243, OptionalLong.empty()),
                new GpuMemory.ComputeApp(4244, OptionalLong.empty()));
        assertThat(GpuMemory.holding(GpuMemory.parse(out), Set.of(4242))).containsExactly(4242);
    }

    @Test
    void extraWhitespaceAndCarriageReturnsAreTolerated() {
        String out = "  2712 ,   71234  \r\n\t2713,71234\r\n\r\n   \n";
        assertThat(GpuMemory.parse(out)).containsExactly(app(2712, 71234), app(2713, 71234));
    }

    @Test
    void linesThatAreNotProcessesAreSkipped() {
        String out = "WARNING: infoROM is corrupted at gpu 0000:41:00.0\n1234, 2048\n";
        assertThat(GpuMemory.parse(out)).containsExactly(app(1234, 2048));
    }

    @Test
    void withoutNvidiaSmiItReturnsAtOnce() {
        GpuMemory.Result r = new GpuMemory(null).await(Set.of(1234), Duration.ofSeconds(60));
        assertThat(r.outcome()).isEqualTo(GpuMemory.Outcome.NO_NVIDIA_SMI);
        assertThat(r.timedOut()).isFalse();
        assertThat(r.waited()).isLessThan(Duration.ofMillis(100));
    }

    @Test
    void withoutNvidiaSmiOnPathTheRealWaitReturnsAtOnce() {
        // No GPU here: the end-to-end path this machine can run is "nvidia-smi absent".
        boolean onPath = java.util.Arrays.stream(System.getenv().getOrDefault("PATH", "").split(":"))
                .anyMatch(d -> !d.isEmpty() && Files.isExecutable(Path.of(d, "nvidia-smi")));
        org.junit.jupiter.api.Assumptions.assumeFalse(onPath, "nvidia-smi is installed here");
        GpuMemory.Result r = GpuMemory.awaitReleased(Set.of(4242), Duration.ofSeconds(60));
        assertThat(r.outcome()).isEqualTo(GpuMemory.Outcome.NO_NVIDIA_SMI);
        assertThat(r.waited()).isLessThan(Duration.ofMillis(100));
    }

    @Test
    void noPidsMeansNothingToWaitFor() {
        GpuMemory.Result r = new GpuMemory(Path.of("/nonexistent/nvidia-smi")).await(Set.of(), Duration.ofSeconds(60));
        assertThat(r.outcome()).isEqualTo(GpuMemory.Outcome.NOTHING_TO_WAIT_FOR);
    }

    /** A stand-in nvidia-smi: checks its arguments, counts its calls, prints {@code lines(call)}. */
    private Path fakeNvidiaSmi(String body) throws IOException {
        Path script = dir.resolve("nvidia-smi");
        Files.writeString(script, """
                #!/bin/sh
                [ "$1" = "%s" ] && [ "$2" = "%s" ] || { echo "unexpected arguments: $*"; exit 2; }
                n=$(cat "%s" 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > "%s"
                %s
                """.formatted(GpuMemory.QUERY.get(0), GpuMemory.QUERY.get(1), dir.resolve("calls"),
                dir.resolve("calls"), body));
        Files.setPosixFilePermissions(script, PosixFilePermissions.fromString("rwx------"));
        return script;
    }

    private int calls() throws IOException {
        return Integer.parseInt(Files.readString(dir.resolve("calls")).strip());
    }

    @Test
    void waitsUntilTheStoppedPidsLeaveTheList() throws IOException {
        // Calls 1-3: the stopped server's two workers still hold memory; then only somebody else's process.
        Path smi = fakeNvidiaSmi("""
                if [ "$n" -le 3 ]; then printf '4242, 20480\\n4243, [N/A]\\n777, 100\\n'; else printf '777, 100\\n'; fi""");
        GpuMemory.Result r = new GpuMemory(smi).await(Set.of(4242, 4243), Duration.ofSeconds(30));
        assertThat(r.outcome()).isEqualTo(GpuMemory.Outcome.RELEASED);
        assertThat(r.stillHolding()).isEmpty();
        assertThat(calls()).isEqualTo(4);
    }

    @Test
    void olderDriversNoProcessesLineEndsTheWait() throws IOException {
        Path smi = fakeNvidiaSmi("""
                if [ "$n" -le 1 ]; then printf '4242, 1024\\n'; else echo 'No running processes found'; fi""");
        GpuMemory.Result r = new GpuMemory(smi).await(Set.of(4242), Duration.ofSeconds(30));
        assertThat(r.outcome()).isEqualTo(GpuMemory.Outcome.RELEASED);
        assertThat(calls()).isEqualTo(2);
    }

    @Test
    void aPidThatNeverLeavesTimesOutAndSaysSo() throws IOException {
        Path smi = fakeNvidiaSmi("printf '4242, 20480\\n'");
        long t0 = System.nanoTime();
        GpuMemory.Result r = new GpuMemory(smi).await(Set.of(4242, 4243), Duration.ofMillis(700));
        assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofSeconds(10));
        assertThat(r.timedOut()).isTrue();
        assertThat(r.stillHolding()).containsExactly(4242);
        assertThat(r.message()).contains("4242").contains("still listed").contains("starting anyway");
    }

    @Test
    void aFailingNvidiaSmiEndsTheWaitAndSaysWhy() throws IOException {
        Path smi = fakeNvidiaSmi("""
                echo "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running."
                exit 9""");
        GpuMemory.Result r = new GpuMemory(smi).await(Set.of(4242), Duration.ofSeconds(30));
        assertThat(r.outcome()).isEqualTo(GpuMemory.Outcome.QUERY_FAILED);
        assertThat(r.timedOut()).isFalse();
        assertThat(r.message()).contains("exit code 9").contains("couldn't communicate with the NVIDIA driver");
        assertThat(calls()).isEqualTo(1);
    }

    @Test
    void parsesWhatTheStandInPrints() {
        assertThat(GpuMemory.parse("4242, 20480\n4243, [N/A]\n777, 100\n")).extracting(GpuMemory.ComputeApp::pid)
                .isEqualTo(List.of(4242, 4243, 777));
    }
}
