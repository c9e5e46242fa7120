-- Generates Proto.Greeter and Proto.Counter from proto/ (a link to the
-- repository's proto/, the schemas the Rust demo compiles too).
import Data.ProtoLens.Setup (defaultMainGeneratingProtos)

main :: IO ()
main = defaultMainGeneratingProtos "proto"
