package dev.tether.server;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** argv for a helper JVM (the shim, the embedded engine) running one of tether's own main classes. */
final class JavaCommand {
    private JavaCommand() {}

    /** tether's classpath: {@code -Dtether.classpath} if set (tests), else this JVM's. */
    static String classpath() {
        String explicit = System.getProperty("tether.classpath");
        return explicit != null && !explicit.isBlank() ? explicit : System.getProperty("java.class.path");
    }

    static String javaBinary() {
        return ProcessHandle.current().info().command()
                .orElseGet(() -> Path.of(System.getProperty("java.home"), "bin", "java").toString());
    }

    static List<String> of(List<String> jvmFlags, String mainClass, String... args) {
        return withClasspath(jvmFlags, classpath(), mainClass, args);
    }

    static List<String> withClasspath(List<String> jvmFlags, String classpath, String mainClass, String... args) {
        List<String> argv = jvm(jvmFlags, classpath);
        argv.add(mainClass);
        argv.addAll(List.of(args));
        return argv;
    }

    /** The java binary, its flags and the class path: a command still without its main class. */
    static List<String> jvm(List<String> jvmFlags, String classpath) {
        List<String> argv = new ArrayList<>();
        argv.add(javaBinary());
        argv.add("--enable-native-access=ALL-UNNAMED");
        argv.addAll(jvmFlags);
        argv.add("-cp");
        argv.add(classpath);
        return argv;
    }
}
