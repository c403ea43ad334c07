package dev.tether.proc;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tether.fixtures.Fixture;
import dev.tether.fixtures.Worker;
import dev.tether.testing.TestLease;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ProcessIdentityTest {

    @TempDir
    Path dir;

    @Test
    void identityOfTheCurrentProcessIsAliveAndStable() {
        ProcessIdentity me = ProcessIdentity.current();
        assertThat(me.isAlive()).isTrue();
        assertThat(ProcessIdentity.current()).isEqualTo(me);
        assertThat(me.bootId()).isEqualTo(ProcFs.bootId()).isNotBlank();
    }

    @Test
    void aRecordedIdentityWithAnotherStartTimeIsNeverSignalled(TestLease lease) throws Exception {
        Spawned worker = Spawner.spawn(Spawner.Spec.of(Fixture.command(Worker.class, "--port", "0"),
                dir.resolve("worker.log"), lease.id()));
        ProcessIdentity real = worker.identity().orElseThrow();
        // The same pid as recorded by an earlier run: a different process that once had this pid.
        ProcessIdentity stale = new ProcessIdentity(real.pid(), real.startTicks() - 1, real.bootId(), real.uid());

        assertThat(stale.isAlive()).isFalse();
        assertThat(Signaller.send(stale, Signal.KILL)).isEqualTo(Signaller.Outcome.NOT_OURS);
        assertThat(Signaller.send(new ProcessIdentity(real.pid(), real.startTicks(), "another-boot", real.uid()),
                Signal.KILL)).isEqualTo(Signaller.Outcome.NOT_OURS);
        assertThat(worker.process().isAlive()).isTrue();

        assertThat(Signaller.send(real, Signal.KILL)).isEqualTo(Signaller.Outcome.SENT);
        assertThat(worker.process().waitFor(10, java.util.concurrent.TimeUnit.SECONDS)).isTrue();
        assertThat(real.isAlive()).isFalse();
        assertThat(Signaller.send(real, Signal.KILL)).isEqualTo(Signaller.Outcome.GONE);
    }

    @Test
    void aProcessGroupIsSignalledOnlyWhileItsWitnessIsInIt(TestLease lease) throws Exception {
        Spawned worker = Spawner.spawn(Spawner.Spec.of(Fixture.command(Worker.class, "--port", "0"),
                dir.resolve("worker.log"), lease.id()));
        ProcessIdentity id = worker.identity().orElseThrow();
        assertThat(Signaller.sendToGroup(id.pid() + 1, id, Signal.KILL)).isEqualTo(Signaller.Outcome.NOT_OURS);
        assertThat(Signaller.sendToGroup(id.pid(), id, Signal.KILL)).isEqualTo(Signaller.Outcome.SENT);
        assertThat(Poll.until(() -> !id.isAlive(), Duration.ofSeconds(10))).isTrue();
        assertThat(Signaller.sendToGroup(id.pid(), id, Signal.KILL)).isEqualTo(Signaller.Outcome.GONE);
    }
}
