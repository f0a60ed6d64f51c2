//! Container ids and names, docker style.

use crate::error::{EngineError, Result};

/// Adjectives of generated names: with [`NOUNS`], more pairs than docker's
/// lists give (108 × 237).
const ADJECTIVES: &[&str] = &[
    "admiring",
    "adoring",
    "affectionate",
    "agile",
    "amazing",
    "angry",
    "awesome",
    "beautiful",
    "blissful",
    "bold",
    "boring",
    "brave",
    "busy",
    "calm",
    "careful",
    "charming",
    "clever",
    "cool",
    "compassionate",
    "competent",
    "condescending",
    "confident",
    "cranky",
    "crazy",
    "dazzling",
    "determined",
    "distracted",
    "dreamy",
    "eager",
    "ecstatic",
    "elastic",
    "elated",
    "elegant",
    "eloquent",
    "epic",
    "exciting",
    "fervent",
    "festive",
    "flamboyant",
    "focused",
    "friendly",
    "frosty",
    "funny",
    "gallant",
    "gifted",
    "goofy",
    "gracious",
    "great",
    "happy",
    "hardcore",
    "heuristic",
    "hopeful",
    "hungry",
    "infallible",
    "inspiring",
    "intelligent",
    "interesting",
    "jolly",
    "jovial",
    "keen",
    "kind",
    "laughing",
    "loving",
    "lucid",
    "magical",
    "modest",
    "musing",
    "mystifying",
    "naughty",
    "nervous",
    "nice",
    "nifty",
    "nimble",
    "nostalgic",
    "objective",
    "optimistic",
    "peaceful",
    "pedantic",
    "pensive",
    "practical",
    "priceless",
    "proud",
    "quirky",
    "quizzical",
    "recursive",
    "relaxed",
    "reverent",
    "romantic",
    "sad",
    "serene",
    "sharp",
    "silly",
    "sleepy",
    "stoic",
    "strange",
    "stupefied",
    "suspicious",
    "sweet",
    "tender",
    "thirsty",
    "tidy",
    "trusting",
    "unruffled",
    "upbeat",
    "vibrant",
    "vigilant",
    "vigorous",
    "vivid",
    "wizardly",
    "wonderful",
    "xenodochial",
    "youthful",
    "zealous",
    "zen",
    "witty",
    "rapid",
    "merry",
    "quiet",
    "gentle",
    "fancy",
];
/// Nouns of generated names.
const NOUNS: &[&str] = &[
    "aardvark",
    "albatross",
    "alligator",
    "alpaca",
    "anchovy",
    "anteater",
    "antelope",
    "armadillo",
    "baboon",
    "badger",
    "barracuda",
    "bat",
    "beaver",
    "bison",
    "boar",
    "bobcat",
    "buffalo",
    "bullfinch",
    "butterfly",
    "buzzard",
    "camel",
    "canary",
    "capybara",
    "caracal",
    "cardinal",
    "caribou",
    "cassowary",
    "catfish",
    "chameleon",
    "cheetah",
    "chickadee",
    "chinchilla",
    "chipmunk",
    "cicada",
    "clam",
    "cobra",
    "cockatoo",
    "condor",
    "cormorant",
    "cougar",
    "coyote",
    "crab",
    "crane",
    "crow",
    "cuckoo",
    "curlew",
    "deer",
    "dingo",
    "dolphin",
    "donkey",
    "dormouse",
    "dove",
    "dragonfly",
    "duck",
    "dugong",
    "eagle",
    "echidna",
    "eel",
    "egret",
    "eland",
    "elephant",
    "elk",
    "emu",
    "ermine",
    "falcon",
    "ferret",
    "finch",
    "firefly",
    "flamingo",
    "flounder",
    "fox",
    "frog",
    "gazelle",
    "gecko",
    "gerbil",
    "gibbon",
    "giraffe",
    "gnu",
    "goat",
    "goldfinch",
    "goose",
    "gopher",
    "gorilla",
    "grasshopper",
    "grouse",
    "gull",
    "hamster",
    "hare",
    "harrier",
    "hawk",
    "hedgehog",
    "heron",
    "herring",
    "hippo",
    "hornet",
    "horse",
    "hummingbird",
    "hyena",
    "ibex",
    "ibis",
    "iguana",
    "impala",
    "jackal",
    "jaguar",
    "jay",
    "jellyfish",
    "kangaroo",
    "kestrel",
    "kingfisher",
    "kiwi",
    "koala",
    "kookaburra",
    "krill",
    "ladybird",
    "lark",
    "lemming",
    "lemur",
    "leopard",
    "limpet",
    "lion",
    "lizard",
    "llama",
    "lobster",
    "locust",
    "loris",
    "lynx",
    "macaw",
    "magpie",
    "mallard",
    "manatee",
    "mandrill",
    "mantis",
    "marmot",
    "marten",
    "meerkat",
    "mink",
    "mole",
    "mongoose",
    "moose",
    "moth",
    "mouse",
    "mule",
    "narwhal",
    "newt",
    "nightingale",
    "ocelot",
    "octopus",
    "okapi",
    "opossum",
    "orca",
    "oriole",
    "oryx",
    "osprey",
    "ostrich",
    "otter",
    "owl",
    "ox",
    "oyster",
    "panda",
    "pangolin",
    "panther",
    "parrot",
    "partridge",
    "peacock",
    "pelican",
    "penguin",
    "petrel",
    "pheasant",
    "pigeon",
    "pika",
    "piranha",
    "platypus",
    "plover",
    "polecat",
    "porcupine",
    "porpoise",
    "possum",
    "puffin",
    "puma",
    "python",
    "quail",
    "quokka",
    "rabbit",
    "raccoon",
    "raven",
    "reindeer",
    "rhino",
    "robin",
    "salamander",
    "salmon",
    "sandpiper",
    "sardine",
    "scorpion",
    "seahorse",
    "seal",
    "shark",
    "sheep",
    "shrew",
    "shrimp",
    "skink",
    "skunk",
    "sloth",
    "snail",
    "sparrow",
    "spider",
    "squid",
    "squirrel",
    "starling",
    "stingray",
    "stoat",
    "stork",
    "swallow",
    "swan",
    "swift",
    "tamarin",
    "tapir",
    "tarsier",
    "termite",
    "tern",
    "thrush",
    "tiger",
    "toad",
    "tortoise",
    "toucan",
    "trout",
    "tuna",
    "turkey",
    "turtle",
    "viper",
    "vole",
    "vulture",
    "wallaby",
    "walrus",
    "warbler",
    "wasp",
    "weasel",
    "whale",
    "wildcat",
    "wolf",
    "wolverine",
    "wombat",
    "woodpecker",
    "wren",
    "yak",
    "zebra",
];

/// A readable name derived from an id (`brave_otter_3fa2`), as docker does
/// when `--name` is not given: the pair is drawn from 32 bits of the id and
/// the first 4 hex digits follow, so two live containers rarely share one
/// (and [`crate::Engine::create`] retries under a new id when they do).
///
/// At most [`MAX_GENERATED_LEN`] bytes: a longer pair gives way to the next
/// noun that fits.
pub fn generated_name(id: &str) -> String {
    let bits = id
        .get(4..12)
        .and_then(|h| u32::from_str_radix(h, 16).ok())
        .unwrap_or(0) as usize;
    let adjective = ADJECTIVES[bits % ADJECTIVES.len()];
    let mut noun = (bits / ADJECTIVES.len()) % NOUNS.len();
    // "_" + noun + "_" + 4 hex digits.
    while adjective.len() + NOUNS[noun].len() + 6 > MAX_GENERATED_LEN {
        noun = (noun + 1) % NOUNS.len();
    }
    format!(
        "{adjective}_{}_{}",
        NOUNS[noun],
        id.get(..4).unwrap_or("0000")
    )
}

/// The longest generated name. The name is the stem of the state directory
/// (`<name>-0`), which appears twice in the container isolation's longest
/// socket path, `<root>/containers/<name>-0/run/<name>-0/notify.sock`,
/// limited to 107 bytes: 23 leaves room for a data root of 28 bytes (the
/// benchmarks' `/tmp/zl-bench-load.XXXXXX/zl`). Uncapped, the longest
/// pairs (names of up to 32 bytes) did not fit even under a 15-byte root
/// such as `/var/lib/zlayer`, and the container failed to create.
pub const MAX_GENERATED_LEN: usize = 23;

/// Checks a user-given name against docker's rule `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub fn validate_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok_first = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let ok_rest = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    // 63: the name is the state directory's (and a hostname's) stem.
    if ok_first && ok_rest && name.len() <= 63 {
        Ok(())
    } else {
        Err(EngineError::InvalidName(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_64_hex_and_differ() {
        let a = zlayer_runtime::new_container_id();
        let b = zlayer_runtime::new_container_id();
        assert_eq!(a.len(), 64);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
    }

    #[test]
    fn names_follow_docker_rules() {
        for good in ["web", "web-1", "a.b_c", "9lives"] {
            validate_name(good).unwrap();
        }
        for bad in ["", "-x", "_x", "a b", "a/b", "é"] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
        let id = zlayer_runtime::new_container_id();
        validate_name(&generated_name(&id)).unwrap();
    }

    #[test]
    fn word_lists_are_at_least_docker_sized_and_distinct() {
        assert!(ADJECTIVES.len() * NOUNS.len() >= 108 * 237);
        let a: std::collections::HashSet<_> = ADJECTIVES.iter().collect();
        let n: std::collections::HashSet<_> = NOUNS.iter().collect();
        assert_eq!(a.len(), ADJECTIVES.len());
        assert_eq!(n.len(), NOUNS.len());
    }

    #[test]
    fn generated_names_rarely_collide() {
        // 200 live containers: docker-sized lists plus 16 bits of the id
        // make a collision among them very unlikely (retried anyway).
        let names: std::collections::HashSet<String> = (0..200)
            .map(|_| generated_name(&zlayer_runtime::new_container_id()))
            .collect();
        assert!(names.len() >= 199, "{} distinct of 200", names.len());
    }

    #[test]
    fn generated_names_fit_the_socket_paths() {
        for _ in 0..5000 {
            let name = generated_name(&zlayer_runtime::new_container_id());
            assert!(name.len() <= MAX_GENERATED_LEN, "{name}");
        }
        let root = "/tmp/zl-bench-load.XXXXXX/zl";
        let stem = format!("{}-0", "x".repeat(MAX_GENERATED_LEN));
        let sock = format!("{root}/containers/{stem}/run/{stem}/notify.sock");
        assert!(sock.len() <= 107, "{} bytes", sock.len());
    }
}
