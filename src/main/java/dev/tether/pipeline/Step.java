package dev.tether.pipeline;

/**
 * One step of a task: the model role it needs a server for, what is left to do (from its files, before a server
 * starts) and its run, which does one record's work per item through a {@link StepRunner}.
 */
public interface Step {
    String name();

    Role role();

    /** What is left to do, found read-only from the step's files; nothing left means no server starts. */
    Work left() throws Exception;

    /** Called once the step's server is up and before {@link #run}, only when there is work left. */
    default void starting() throws Exception {}

    StepResult run(StepRunner runner) throws Exception;

    /** What is left, as {@link #left}. */
    interface Left {
        Work get() throws Exception;
    }

    /** The step's run, as {@link #run}. */
    interface Body {
        StepResult run(StepRunner runner) throws Exception;
    }

    /** Something to do once the server is up, as {@link #starting}. */
    interface Action {
        void run() throws Exception;
    }

    static Step of(String name, Role role, Left left, Body body) {
        return of(name, role, left, () -> {}, body);
    }

    static Step of(String name, Role role, Left left, Action starting, Body body) {
        return new Step() {
            @Override
            public String name() {
                return name;
            }

            @Override
            public Role role() {
                return role;
            }

            @Override
            public Work left() throws Exception {
                return left.get();
            }

            @Override
            public void starting() throws Exception {
                starting.run();
            }

            @Override
            public StepResult run(StepRunner runner) throws Exception {
                return body.run(runner);
            }
        };
    }
}
