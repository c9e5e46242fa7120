{-# LANGUAGE ScopedTypeVariables #-}
-- | What every program talking to a kaisui node needs: a local node, the
-- Rust node's 'NodeId', lookups, and the protobuf framing ractor uses.
module Kaisui.Node
  ( startNode
  , runOrExit
  , kaisuiNode
  , findProcess
  , toWire
  , fromWire
  , describeType
  , failWith
  ) where

import Control.Concurrent.MVar (newEmptyMVar, putMVar, tryTakeMVar)
import Control.Distributed.Process
import Control.Distributed.Process.Node
  (LocalNode, closeLocalNode, initRemoteTable, newLocalNode, runProcess)
import Control.Exception (SomeException, throwIO)
import Control.Monad (join)
import Data.ByteString (ByteString)
import qualified Data.ByteString.Char8 as BS8
import Data.ProtoLens.Encoding (buildMessageDelimited, parseMessageDelimited)
import Data.ProtoLens.Encoding.Bytes (runBuilder, runParser)
import Data.ProtoLens.Message (Message)
import Data.Proxy (Proxy)
import Data.Typeable
  (Typeable, tyConModule, tyConName, tyConPackage, typeRep, typeRepFingerprint, typeRepTyCon)
import Network.Transport (EndPointAddress (..))
import Network.Transport.TCP (createTransport, defaultTCPAddr, defaultTCPParameters)
import System.Exit (exitFailure)
import System.IO (hPutStrLn, stderr)

-- | A local node listening on @host:port@ (port "0" picks a free one).
startNode :: String -> String -> IO LocalNode
startNode host port = do
  transport <- createTransport (defaultTCPAddr host port) defaultTCPParameters
  either throwIO (`newLocalNode` initRemoteTable) transport

-- | Runs the process, closes the node, and exits non-zero if the process
-- failed ('runProcess' itself does not rethrow).
runOrExit :: LocalNode -> Process () -> IO ()
runOrExit node body = do
  result <- newEmptyMVar
  runProcess node $
    (body >> liftIO (putMVar result Nothing))
      `catch` \(e :: SomeException) -> liftIO (putMVar result (Just (show e)))
  closeLocalNode node
  outcome <- tryTakeMVar result
  case outcome of
    Just Nothing -> pure ()
    Just (Just e) -> exitWith' e
    Nothing -> exitWith' "the process was killed"
  where
    exitWith' e = hPutStrLn stderr ("failed: " ++ e) >> exitFailure

-- | The NodeId of the kaisui node at @host:port:0@ (its NT-TCP address).
kaisuiNode :: String -> NodeId
kaisuiNode = NodeId . EndPointAddress . BS8.pack

-- | The process registered as @name@ on @node@: 'whereisRemoteAsync',
-- then the 'WhereIsReply' for that name. Nothing if nobody has the name or
-- no answer came within @micros@.
findProcess :: NodeId -> String -> Int -> Process (Maybe ProcessId)
findProcess node name micros = do
  whereisRemoteAsync node name
  join
    <$> receiveTimeout
      micros
      [ matchIf
          (\(WhereIsReply label _) -> label == name)
          (\(WhereIsReply _ pid) -> pure pid)
      ]

-- | A protobuf message as ractor_cluster's @derive_serialization_for_prost_type!@
-- encodes a field: length-delimited (varint length, then the message).
toWire :: Message msg => msg -> ByteString
toWire = runBuilder . buildMessageDelimited

-- | Inverse of 'toWire'.
fromWire :: Message msg => ByteString -> Either String msg
fromWire = runParser parseMessageDelimited

-- | @unit:Module.Type fingerprint@ of a message type: what the Rust node's
-- TypeRegistry must be configured with.
describeType :: forall a. Typeable a => Proxy a -> String
describeType p =
  tyConPackage c ++ ":" ++ tyConModule c ++ "." ++ tyConName c ++ " " ++ show (typeRepFingerprint t)
  where
    t = typeRep p
    c = typeRepTyCon t

-- | Fail the current process with a message.
failWith :: String -> Process a
failWith = liftIO . throwIO . userError
