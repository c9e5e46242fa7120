{-# LANGUAGE OverloadedStrings #-}
-- | A Haskell process the Rust side finds and calls:
--
-- > cabal run echo -- 127.0.0.1:4000:0
--
-- registers itself as "echo", introduces itself to the Rust greeter with
-- its pid inside the Greeting (the greeter then casts a Hello to it and
-- calls it with an Ask), and from then on prints every Hello and answers
-- every Ask, until killed.
module Main (main) where

import Control.Distributed.Process
import Control.Monad (forever)
import Data.Binary (encode)
import qualified Data.ByteString.Lazy as BSL
import Data.Text (Text)
import Lens.Micro ((&), (.~), (^.))
import System.Environment (getArgs)
import System.Exit (exitFailure)
import System.IO (hFlush, hPutStrLn, stderr, stdout)

import Data.ProtoLens (defMessage)
import Kaisui.Greeter
import Kaisui.Node
import qualified Proto.Greeter as PG
import qualified Proto.Greeter_Fields as PG

main :: IO ()
main = do
  args <- getArgs
  (rust, port) <- case args of
    [a] -> pure (a, "0")
    [a, p] -> pure (a, p)
    _ -> hPutStrLn stderr "usage: echo HOST:PORT:0 [OUR_PORT]" >> exitFailure
  node <- startNode "127.0.0.1" port
  runOrExit node $ do
    self <- getSelfPid
    register "echo" self
    liftIO $ putStrLn ("echo is " ++ show self ++ ", registered as \"echo\"")
    let intro = defMessage
          & PG.text .~ ("echo" :: Text)
          & PG.replyTo .~ BSL.toStrict (encode self)
    nsendRemote (kaisuiNode rust) "greeter" (Hello (toWire (intro :: PG.Greeting)))
    liftIO $ putStrLn "sent Hello \"echo\" with our pid to the Rust greeter"
    forever $ receiveWait
      [ match $ \(Hello bytes) -> out $ case fromWire bytes of
          Right g -> "got Hello " ++ show ((g :: PG.Greeting) ^. PG.text)
          Left e -> "got a Hello that is not a Greeting: " ++ e
      , match $ \(Ask replyTo bytes) -> case fromWire bytes of
          Right q -> do
            let text = "echo: " <> (q :: PG.Question) ^. PG.text
            send replyTo (AskReply (toWire (defMessage & PG.text .~ text :: PG.Answer)))
            out ("got Ask " ++ show (q ^. PG.text) ++ ", replied " ++ show text)
          Left e -> out ("got an Ask that is not a Question: " ++ e)
      , matchAny $ \_ -> out "ignored a message of another type"
      ]
  where
    out s = liftIO (putStrLn s >> hFlush stdout)
