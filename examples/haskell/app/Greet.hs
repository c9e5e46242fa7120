{-# LANGUAGE OverloadedStrings #-}
-- | Talks to the Rust actors of kaisui's demo:
--
-- > cabal run greet -- 127.0.0.1:4000:0
--
-- finds the greeter and the counter with whereisRemoteAsync, casts to them
-- (nsendRemote and send), calls them (send with our pid, then wait for the
-- reply) and prints what came back.
module Main (main) where

import Control.Distributed.Process
import Data.Proxy (Proxy (..))
import Data.Text (Text)
import Lens.Micro ((&), (.~), (^.))
import System.Environment (getArgs)
import System.Exit (exitFailure)
import System.IO (hPutStrLn, stderr)

import Data.ProtoLens (defMessage)
import Kaisui.Counter
import Kaisui.Greeter
import Kaisui.Node
import qualified Proto.Counter as PC
import qualified Proto.Counter_Fields as PC
import qualified Proto.Greeter as PG
import qualified Proto.Greeter_Fields as PG

seconds :: Int -> Int
seconds = (* 1000000)

greeting :: Text -> PG.Greeting
greeting t = defMessage & PG.text .~ t

main :: IO ()
main = do
  args <- getArgs
  (rust, port) <- case args of
    [a] -> pure (a, "0")
    [a, p] -> pure (a, p)
    _ -> hPutStrLn stderr "usage: greet HOST:PORT:0 [OUR_PORT]" >> exitFailure
  node <- startNode "127.0.0.1" port
  runOrExit node $ do
    let rustNode = kaisuiNode rust
    liftIO $ do
      putStrLn "message types (the Rust node must register these):"
      mapM_ (putStrLn . ("  " ++))
        [ describeType (Proxy :: Proxy Hello)
        , describeType (Proxy :: Proxy Ask)
        , describeType (Proxy :: Proxy AskReply)
        , describeType (Proxy :: Proxy Add)
        , describeType (Proxy :: Proxy Get)
        , describeType (Proxy :: Proxy GetReply)
        ]
    self <- getSelfPid

    greeter <- findProcess rustNode "greeter" (seconds 5)
      >>= maybe (failWith "no \"greeter\" on the Rust node") pure
    liftIO $ putStrLn ("greeter is " ++ show greeter)
    nsendRemote rustNode "greeter" (Hello (toWire (greeting "hello by name")))
    send greeter (Hello (toWire (greeting "hello by pid")))
    liftIO $ putStrLn "sent Hello \"hello by name\" (nsendRemote) and \"hello by pid\" (send)"

    let question = defMessage & PG.text .~ ("what's new?" :: Text) :: PG.Question
    send greeter (Ask self (toWire question))
    AskReply answerBytes <- expectTimeout (seconds 5)
      >>= maybe (failWith "no AskReply within 5 s") pure
    answer <- either (failWith . ("bad Answer: " ++)) pure (fromWire answerBytes)
    liftIO $ putStrLn ("Ask \"what's new?\" -> AskReply " ++ show ((answer :: PG.Answer) ^. PG.text))

    counter <- findProcess rustNode "counter" (seconds 5)
      >>= maybe (failWith "no \"counter\" on the Rust node") pure
    nsendRemote rustNode "counter" (Add (toWire (defMessage & PC.by .~ 2 :: PC.Increment)))
    send counter (Add (toWire (defMessage & PC.by .~ 40 :: PC.Increment)))
    send counter (Get self)
    GetReply countBytes <- expectTimeout (seconds 5)
      >>= maybe (failWith "no GetReply within 5 s") pure
    count <- either (failWith . ("bad Count: " ++)) pure (fromWire countBytes)
    liftIO $ putStrLn ("Add 2, Add 40, Get -> GetReply " ++ show ((count :: PC.Count) ^. PC.value))
