{-# LANGUAGE DeriveGeneric #-}
-- | The Haskell types of the Rust greeter's messages, one per ractor
-- variant of
--
-- > enum GreeterMsg { Hello(Greeting), #[rpc] Ask(Question, RpcReplyPort<Answer>) }
--
-- Each 'ByteString' holds one length-delimited protobuf message (see
-- "Kaisui.Node".'Kaisui.Node.toWire'). The Rust node registers these types
-- by unit id, module and name, so renaming or moving them changes their
-- fingerprints.
module Kaisui.Greeter
  ( Hello (..)
  , Ask (..)
  , AskReply (..)
  ) where

import Control.Distributed.Process (ProcessId)
import Data.Binary (Binary)
import Data.ByteString (ByteString)
import GHC.Generics (Generic)

-- | @GreeterMsg::Hello(Greeting)@, a cast.
data Hello = Hello !ByteString
  deriving (Show, Generic)

instance Binary Hello

-- | @GreeterMsg::Ask(Question, _)@, a call: whom to answer, then the
-- Question.
data Ask = Ask !ProcessId !ByteString
  deriving (Show, Generic)

instance Binary Ask

-- | The reply to an 'Ask': an Answer.
newtype AskReply = AskReply ByteString
  deriving (Show, Generic)

instance Binary AskReply
