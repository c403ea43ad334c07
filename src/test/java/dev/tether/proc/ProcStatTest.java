package dev.tether.proc;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class ProcStatTest {

    @Test
    void parsesACommandNameWithSpacesAndParentheses() {
        String line = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 123456 1000 50 "
                + "18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        ProcStat stat = ProcStat.parse(line);
        assertThat(stat.pid()).isEqualTo(4242);
        assertThat(stat.comm()).isEqualTo("my (odd) name");
        assertThat(stat.state()).isEqualTo('S');
        assertThat(stat.ppid()).isEqualTo(1);
        assertThat(stat.pgrp()).isEqualTo(4242);
        assertThat(stat.session()).isEqualTo(4242);
        assertThat(stat.startTicks()).isEqualTo(123456L);
    }

    @Test
    void aZombieIsDead() {
        String line = "7 (x) Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99 0 0 0";
        assertThat(ProcStat.parse(line).isDead()).isTrue();
    }

    @Test
    void readsItsOwnProcess() {
        int self = (int) ProcessHandle.current().pid();
        ProcStat stat = ProcFs.stat(self).orElseThrow();
        assertThat(stat.pid()).isEqualTo(self);
        assertThat(stat.startTicks()).isPositive();
        assertThat(stat.isDead()).isFalse();
    }
}
