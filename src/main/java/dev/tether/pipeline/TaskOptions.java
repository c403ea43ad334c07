package dev.tether.pipeline;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The options of {@code tether run} that tasks read, parsed and defaulted by the command (qGenerator and judge are
 * the model unless given). Options a task does not use are null or their defaults.
 */
public record TaskOptions(String model, String qGenerator, String judge, int n, Path outputDir, Layout layout,
                          Path input, Path output, Path data, Path entitiesDir, Path wikiFile, int maxTokens,
                          double temperature, long seed, boolean resume, int concurrency, PrintStream err) {

    public String modelFor(Role role) {
        return switch (role) {
            case GENERATOR -> qGenerator;
            case JUDGE -> judge;
            case MODEL, NONE -> model;
        };
    }

    /** The output directory must be creatable and writable before a server starts. */
    public void prepareOutputDir() throws InputException {
        try {
            Files.createDirectories(outputDir);
            Path probe = Files.createTempFile(outputDir, ".tether-write-check", ".tmp");
            Files.delete(probe);
        } catch (IOException | SecurityException e) {
            throw new InputException("output directory " + outputDir + " is not writable (" + why(e)
                    + "); choose another with --output-dir");
        }
    }

    /** An output file must be writable before a server starts (not a directory, its directory writable). */
    public static void checkOutputFile(Path file) throws InputException {
        if (Files.isDirectory(file)) {
            throw new InputException("output " + file + " is a directory; give a file path with --output");
        }
        Path parent = file.toAbsolutePath().getParent();
        try {
            Files.createDirectories(parent);
            Path probe = Files.createTempFile(parent, ".tether-write-check", ".tmp");
            Files.delete(probe);
        } catch (IOException | SecurityException e) {
            throw new InputException("output " + file + " cannot be written: its directory " + parent + " is not writable ("
                    + why(e) + "); choose another with --output");
        }
        if (Files.exists(file) && !Files.isWritable(file)) {
            throw new InputException("output " + file + " is not writable; choose another with --output");
        }
    }

    /** The output must not be the input: appending results to the file being read would corrupt both. */
    public static void checkNotInput(Path input, Path output) throws InputException {
        try {
            if (Files.exists(output) && Files.isSameFile(input, output)) {
                throw new InputException("--output " + output + " is the input file; give another path with --output");
            }
        } catch (IOException e) {
            // unreadable paths are reported by the checks of the input and the output
        }
    }

    /** An input file that must exist and be readable, by the option that names it. */
    public static void checkInputFile(Path file, String what) throws InputException {
        if (Files.isDirectory(file)) {
            throw new InputException(what + " " + file + " is a directory; give a file");
        }
        if (!Files.isRegularFile(file)) {
            throw new InputException(what + " file not found: " + file);
        }
        if (!Files.isReadable(file)) {
            throw new InputException(what + " file is not readable: " + file);
        }
    }

    /** The OS's reason (Java's file exceptions often carry only the path as their message). */
    static String why(Exception e) {
        if (e instanceof java.nio.file.FileSystemException f && f.getReason() != null) {
            return f.getReason();
        }
        return switch (e) {
            case java.nio.file.NoSuchFileException n -> "cannot be created there";
            case java.nio.file.FileAlreadyExistsException x -> "a file is in the way: " + x.getFile();
            case java.nio.file.AccessDeniedException x -> "permission denied";
            default -> e.getMessage();
        };
    }

    /** A model name as a file name: the last part of a path or repo id, safe characters only. */
    public static String modelName(String model) {
        String name = model.replaceAll("/+$", "");
        name = name.substring(name.lastIndexOf('/') + 1);
        return name.replaceAll("[^A-Za-z0-9._-]", "_");
    }
}
