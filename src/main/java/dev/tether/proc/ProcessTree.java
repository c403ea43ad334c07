package dev.tether.proc;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Finds the live members of one tree by scanning {@code /proc}. The current process (and so the
 * manager itself) is never a member. Zombies are never members: they have exited.
 *
 * <p>A scan reads every process's stat and, for processes not already known to carry the marker,
 * its environ: a few milliseconds on a machine with hundreds of processes. Processes once seen with
 * the marker are remembered, so a server that later overwrites its environment stays a member.
 */
public final class ProcessTree {
    private final Membership membership;
    private final Set<ProcessIdentity> marked = ConcurrentHashMap.newKeySet();
    private final int self = (int) ProcessHandle.current().pid();

    public ProcessTree(Membership membership) {
        this.membership = membership;
        marked.addAll(membership.known());
    }

    public Membership membership() {
        return membership;
    }

    /** Everything ever seen as a member, alive or not: what a lease records. */
    public Set<ProcessIdentity> everSeen() {
        return Set.copyOf(marked);
    }

    /** Live members now, in pid order. */
    public List<Member> members() {
        String bootId = ProcFs.bootId();
        Map<Integer, ProcStat> all = new HashMap<>();
        Map<Integer, List<Integer>> children = new HashMap<>();
        // The subreaper (the server's shim) manages the tree; it is never one of its members.
        int shim = membership.subreaper() == null ? -1 : membership.subreaper().pid();
        for (int pid : ProcFs.pids()) {
            if (pid == self || pid == shim) {
                continue;
            }
            ProcFs.stat(pid).filter(s -> !s.isDead()).ifPresent(s -> {
                all.put(pid, s);
                children.computeIfAbsent(s.ppid(), k -> new ArrayList<>()).add(pid);
            });
        }

        Map<Integer, ProcessIdentity> found = new LinkedHashMap<>();
        // Insertion-ordered set: each pid is a seed at most once.
        java.util.LinkedHashSet<Integer> seeds = new java.util.LinkedHashSet<>();
        if (membership.root() != null && isSame(membership.root(), all, bootId)) {
            seeds.add(membership.root().pid());
        }
        // The subreaper itself is left out of `all` (it is never a member), so it is checked on its own: a
        // check against `all` never matched, and escaped children it adopted were found only once a
        // refresh had recorded them (found by the chaos soak: kill -9 of a root right after Ready).
        if (membership.subreaper() != null && isLive(membership.subreaper(), bootId)) {
            seeds.addAll(children.getOrDefault(membership.subreaper().pid(), List.of()));
        }
        for (ProcessIdentity id : marked) {
            if (isSame(id, all, bootId)) {
                seeds.add(id.pid());
            }
        }
        String marker = membership.markerEntry();
        if (marker != null) {
            for (ProcStat s : all.values()) {
                if (!seeds.contains(s.pid()) && ProcFs.environContains(s.pid(), marker)) {
                    seeds.add(s.pid());
                }
            }
        }
        // The group rule only widens a tree that is known to be alive in that group.
        if (membership.pgid() > 0) {
            boolean witnessed = seeds.stream().map(all::get).anyMatch(s -> s != null && s.pgrp() == membership.pgid());
            if (witnessed) {
                all.values().stream().filter(s -> s.pgrp() == membership.pgid()).forEach(s -> seeds.add(s.pid()));
            }
        }

        ArrayDeque<Integer> queue = new ArrayDeque<>(seeds);
        while (!queue.isEmpty()) {
            int pid = queue.poll();
            ProcStat s = all.get(pid);
            if (s == null || found.containsKey(pid)) {
                continue;
            }
            ProcessIdentity id = ProcessIdentity.of(pid).orElse(null);
            if (id == null || id.startTicks() != s.startTicks() || !id.bootId().equals(bootId)) {
                continue;   // exited or replaced while we looked
            }
            found.put(pid, id);
            queue.addAll(children.getOrDefault(pid, List.of()));
        }
        marked.addAll(found.values());
        List<Member> members = new ArrayList<>(found.size());
        found.values().stream().sorted(java.util.Comparator.comparingInt(ProcessIdentity::pid))
                .forEach(id -> members.add(new Member(id, all.get(id.pid()))));
        return members;
    }

    public boolean isEmpty() {
        return members().isEmpty();
    }

    private static boolean isLive(ProcessIdentity id, String bootId) {
        return id.bootId().equals(bootId) && ProcFs.stat(id.pid())
                .filter(s -> !s.isDead() && s.startTicks() == id.startTicks()).isPresent();
    }

    private static boolean isSame(ProcessIdentity id, Map<Integer, ProcStat> all, String bootId) {
        ProcStat s = all.get(id.pid());
        return s != null && s.startTicks() == id.startTicks() && id.bootId().equals(bootId);
    }
}
