package dev.tether.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Built-in profiles and user profiles from tether.yaml ($TETHER_HOME's, then the working directory's). */
class ProfilesTest {
    private static final Map<String, String> VALUES = Map.of("model", "M", "port", "9001", "host", "127.0.0.1");

    @TempDir
    Path dir;

    private TetherHome home;
    private Path work;

    @BeforeEach
    void setUp() throws Exception {
        home = new TetherHome(dir.resolve("home"));
        work = Files.createDirectories(dir.resolve("work"));
    }

    private Profiles load() {
        return Profiles.load(home, work);
    }

    private void write(Path file, String yaml) throws Exception {
        Files.createDirectories(file.getParent());
        Files.writeString(file, yaml);
    }

    @Test
    void builtInsTurnAModelIntoAnArgv() {
        Profiles profiles = Profiles.builtIns();
        assertThat(profiles.names()).contains("vllm", "llama-server", "sglang", "command", "embedded");
        Profile vllm = profiles.find("vllm").orElseThrow();
        assertThat(vllm.command().render(VALUES)).containsExactly("vllm", "serve", "M", "--host", "127.0.0.1", "--port", "9001");
        assertThat(vllm.healthPath()).isEqualTo("/health");
        assertThat(vllm.startupTimeout()).isEqualTo(Profile.DEFAULT_STARTUP);
        assertThat(profiles.find("llama-server").orElseThrow().command().render(VALUES))
                .containsExactly("llama-server", "-m", "M", "--host", "127.0.0.1", "--port", "9001");
        assertThat(profiles.find("sglang").orElseThrow().command().render(VALUES)).startsWith("python3", "-m", "sglang.launch_server");
        assertThat(profiles.find("nope")).isEmpty();
    }

    @Test
    void withoutFilesOnlyBuiltInsExist() {
        assertThat(load().names()).containsExactlyInAnyOrder("vllm", "llama-server", "sglang", "command", "embedded");
    }

    @Test
    void theCommandProfileWrapsAnArgvTemplate() {
        Profile p = Profiles.command("srv --port {port}", "health");
        assertThat(p.name()).isEqualTo(Profiles.COMMAND);
        assertThat(p.healthPath()).isEqualTo("/health");
        assertThat(p.command().render(VALUES)).containsExactly("srv", "--port", "9001");
        assertThat(Profiles.command("srv", null).healthPath()).isNull();
    }

    @Test
    void aUserProfileIsReadWithEverySetting() throws Exception {
        write(work.resolve("tether.yaml"), """
                profiles:
                  big-vllm:
                    command: ["vllm", "serve", "{model}", "--host", "{host}", "--port", "{port}", "-tp", "2"]
                    health: /ready
                    startup-timeout: 15m
                    hang-timeout: 5m
                    env: {CUDA_VISIBLE_DEVICES: "0,1", VLLM_LOGGING_LEVEL: DEBUG}
                  one-line:
                    command: "my-server --model '{model}' --listen {host}:{port}"
                    health: none
                    startup-timeout: 500ms
                  defaults:
                    command: [srv, "{port}"]
                """);
        Profiles profiles = load();
        assertThat(profiles.names()).contains("big-vllm", "one-line", "defaults", "vllm");

        Profile big = profiles.find("big-vllm").orElseThrow();
        assertThat(big.command().render(VALUES)).containsExactly("vllm", "serve", "M", "--host", "127.0.0.1", "--port", "9001", "-tp", "2");
        assertThat(big.healthPath()).isEqualTo("/ready");
        assertThat(big.startupTimeout()).isEqualTo(Duration.ofMinutes(15));
        assertThat(big.hangTimeout()).isEqualTo(Duration.ofMinutes(5));
        assertThat(big.env()).containsExactlyInAnyOrderEntriesOf(Map.of("CUDA_VISIBLE_DEVICES", "0,1", "VLLM_LOGGING_LEVEL", "DEBUG"));

        Profile line = profiles.find("one-line").orElseThrow();
        assertThat(line.command().render(VALUES)).containsExactly("my-server", "--model", "M", "--listen", "127.0.0.1:9001");
        assertThat(line.healthPath()).isNull();
        assertThat(line.startupTimeout()).isEqualTo(Duration.ofMillis(500));

        Profile defaults = profiles.find("defaults").orElseThrow();
        assertThat(defaults.healthPath()).isEqualTo("/health");
        assertThat(defaults.startupTimeout()).isEqualTo(Profile.DEFAULT_STARTUP);
        assertThat(defaults.env()).isEmpty();
        assertThat(defaults.hangTimeout()).as("unset: the run's --hang-timeout default").isNull();
    }

    @Test
    void theWorkingDirectoryWinsOverTetherHomeAndBothOverBuiltIns() throws Exception {
        write(home.root().resolve("tether.yaml"), """
                profiles:
                  mine: {command: "home-server {port}"}
                  shared: {command: "home-shared {port}"}
                """);
        write(work.resolve("tether.yaml"), """
                profiles:
                  shared: {command: "work-shared {port}"}
                  vllm: {command: "/opt/vllm/bin/vllm serve {model} --port {port}", health: /v1/models}
                """);
        Profiles profiles = load();
        assertThat(profiles.find("mine").orElseThrow().command().words()).containsExactly("home-server", "{port}");
        assertThat(profiles.find("shared").orElseThrow().command().words()).containsExactly("work-shared", "{port}");
        Profile vllm = profiles.find("vllm").orElseThrow();
        assertThat(vllm.command().words().getFirst()).isEqualTo("/opt/vllm/bin/vllm");
        assertThat(vllm.healthPath()).isEqualTo("/v1/models");
    }

    @Test
    void anEmptyFileAddsNothing() throws Exception {
        write(work.resolve("tether.yaml"), "");
        assertThat(load().names()).hasSize(5);
    }

    @Test
    void invalidYamlNamesTheFile() throws Exception {
        write(work.resolve("tether.yaml"), "profiles:\n  x: [unclosed\n");
        assertThatThrownBy(this::load).isInstanceOf(Profiles.ProfileException.class)
                .hasMessageContaining(work.resolve("tether.yaml").toString()).hasMessageContaining("not valid YAML")
                .satisfies(e -> assertThat(e.getMessage()).doesNotContain("\n"));
    }

    @Test
    void yamlErrorsCarryLineAndColumn() throws Exception {
        Path file = work.resolve("tether.yaml");
        write(file, "profiles:\n  x: [unclosed\n");
        assertThatThrownBy(this::load).hasMessageStartingWith(file + ":2:15: not valid YAML");
        assertRefused("profiles:\n  ok: {command: srv}\n  p:\n    command: srv\n    comand: srv\n",
                file + ":5:5: profile 'p': unknown key 'comand'");
        assertRefused("profiles:\n  p:\n    command: srv\n    startup-timeout: soon\n",
                file + ":4:5: profile 'p': 'startup-timeout': 'soon' is not a duration");
        assertRefused("profiles:\n  p:\n    health: /h\n", file + ":2:3: profile 'p': 'command' is missing");
    }

    @Test
    void eachMistakeIsOneClearMessage() throws Exception {
        assertRefused("servers: {}\n", "expected a top-level 'profiles:' mapping");
        assertRefused("profiles:\n  p: just-a-string\n", "profile 'p': expected a mapping with 'command'");
        assertRefused("profiles:\n  p: {health: /h}\n", "profile 'p': 'command' is missing");
        assertRefused("profiles:\n  p: {command: 42}\n", "'command' must be a list of words or one string");
        assertRefused("profiles:\n  p: {command: \"srv {nope}\"}\n", "unknown placeholder {nope}");
        assertRefused("profiles:\n  p: {command: [srv, \"--x={nope}\"]}\n", "unknown placeholder {nope}");
        assertRefused("profiles:\n  p: {command: \"srv 'open\"}\n", "unbalanced");
        assertRefused("profiles:\n  p: {command: srv, startup-timeout: soon}\n", "'soon' is not a duration");
        assertRefused("profiles:\n  p: {command: srv, env: [A, B]}\n", "'env' must be a mapping");
        assertRefused("profiles:\n  p: {command: srv, hang-timeout: never}\n", "'hang-timeout': 'never' is not a duration");
        assertRefused("profiles:\n  p: {command: srv, hang-timeout: 0s}\n", "'hang-timeout' must be more than 0");
        assertRefused("profiles:\n  p:\n    command: srv\n    ready-log: \"model (loaded\"\n",
                work.resolve("tether.yaml") + ":4:5: profile 'p': 'ready-log' is not a regular expression");
    }

    @Test
    void readyLogIsAProfileKey() throws Exception {
        write(work.resolve("tether.yaml"), "profiles:\n  p:\n    command: srv\n    ready-log: \"Uvicorn running on\"\n");
        assertThat(load().find("p").orElseThrow().readyLog()).isEqualTo("Uvicorn running on");
    }

    private void assertRefused(String yaml, String message) throws Exception {
        write(work.resolve("tether.yaml"), yaml);
        assertThatThrownBy(this::load).as(yaml).isInstanceOf(Profiles.ProfileException.class)
                .hasMessageContaining("tether.yaml").hasMessageContaining(message);
    }
}
